package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/kafkahash"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// server starts the API over a backend and returns its URL.
func server(t testing.TB, table offsets.Table, bucket segments.Bucket) string {
	t.Helper()
	b := broker.New(offsets.New(table), bucket, broker.Config{PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond})
	srv := httptest.NewServer(httpapi.New(b, httpapi.Options{PingInterval: 200 * time.Millisecond}).Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(b.Drain)
	return srv.URL
}

func memServer(t *testing.T) string { return server(t, memtable.New(), membucket.New()) }

func embedded(t testing.TB) string {
	bt, fb := testenv.Embedded(t, t.TempDir())
	return server(t, bt, fb)
}

func minioMoto(t testing.TB) string {
	table, bucket, _ := testenv.MinIOMoto(t, "client", 0)
	return server(t, table, bucket)
}

// faulty injects transient faults: connections that fail before a request
// is sent, responses lost after the server committed, and 503s.
type faulty struct {
	next                 http.RoundTripper
	rate                 float64
	dropped, lost, fails atomic.Int64
}

func (f *faulty) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/records") {
		switch x := rand.Float64(); {
		case x < f.rate/3:
			f.dropped.Add(1)
			return nil, errors.New("injected: connection refused")
		case x < 2*f.rate/3:
			resp, err := f.next.RoundTrip(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			f.lost.Add(1)
			return nil, errors.New("injected: connection reset after the request was sent")
		case x < f.rate:
			f.fails.Add(1)
			body := `{"type":"x","title":"Temporarily unavailable","status":503,"code":"unavailable","retryable":true,"side_effect":"none"}`
			return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"application/problem+json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
		}
	}
	return f.next.RoundTrip(req)
}

// TestProducersExactlyOnceUnderFaults: 4 idempotent producers send 100k
// records through a transport that drops requests, loses responses after
// the commit, and answers 503s. Every record must be stored exactly once,
// in each producer's order within each partition.
func TestProducersExactlyOnceUnderFaults(t *testing.T) {
	for _, be := range []struct {
		name       string
		url        func(testing.TB) string
		perProd    int
		batchBytes int
	}{
		{"embedded", embedded, 25000, 16 << 10},
		{"minio+moto", minioMoto, 25000, 128 << 10},
	} {
		t.Run(be.name, func(t *testing.T) {
			base := be.url(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			f := &faulty{next: http.DefaultTransport, rate: 0.1}
			c, err := client.New(base, client.WithHTTPClient(&http.Client{Transport: f, Timeout: time.Minute}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateTopic(ctx, "exact", 4, nil); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := c.NewProducer(ctx, "exact", client.WithBatchBytes(be.batchBytes), client.WithLinger(5*time.Millisecond))
					if err != nil {
						t.Error(err)
						return
					}
					futures := make([]*client.Future, be.perProd)
					for i := range be.perProd {
						futures[i] = p.Produce(ctx, client.Record{Key: fmt.Appendf(nil, "k%d", i%50), Value: fmt.Appendf(nil, "p%d-%06d", w, i)})
					}
					if err := p.Close(ctx); err != nil {
						t.Errorf("producer %d: %v", w, err)
					}
					for i, f := range futures {
						if _, err := f.Wait(ctx); err != nil {
							t.Errorf("producer %d record %d: %v", w, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if f.dropped.Load() == 0 || f.lost.Load() == 0 || f.fails.Load() == 0 {
				t.Fatalf("faults injected: %d dropped, %d lost, %d 503s: the test proves too little", f.dropped.Load(), f.lost.Load(), f.fails.Load())
			}
			clean, _ := client.New(base)
			seen := map[string]bool{}
			for part := range int32(4) {
				last := map[string]int{}
				for off := int64(0); ; {
					res, err := clean.Read(ctx, "exact", part, client.ReadOptions{Offset: &off, MaxRecords: 10000})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range res.Records {
						v := string(r.Value)
						if seen[v] {
							t.Fatalf("%s stored twice", v)
						}
						seen[v] = true
						var prod string
						var seq int
						fmt.Sscanf(v, "%2s-%d", &prod, &seq)
						if prev, ok := last[prod]; ok && seq <= prev {
							t.Fatalf("partition %d: %s after %s-%06d: order not preserved", part, v, prod, prev)
						}
						last[prod] = seq
					}
					off = res.NextOffset
					if off >= res.LogEndOffset {
						break
					}
				}
			}
			if len(seen) != 4*be.perProd {
				t.Fatalf("%d distinct records stored, want %d", len(seen), 4*be.perProd)
			}
			t.Logf("%d records exactly once; faults: %d dropped requests, %d lost responses, %d 503s", len(seen), f.dropped.Load(), f.lost.Load(), f.fails.Load())
		})
	}
}

func TestConsumersShareAndCommit(t *testing.T) {
	base := memServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := client.New(base)
	if _, err := c.CreateTopic(ctx, "events", 6, nil); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		p.Produce(ctx, client.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	assignedCalls := atomic.Int32{}
	newConsumer := func(id string) *client.Consumer {
		cs, err := c.NewConsumer("g", []string{"events"}, client.WithMemberID(id), client.WithAutoOffsetReset("earliest"),
			client.WithPollWait(100*time.Millisecond), client.WithSessionTimeout(5*time.Second),
			client.WithRebalanceListener(func(context.Context, []client.TopicPartition) { assignedCalls.Add(1) }, nil))
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	consumers := []*client.Consumer{newConsumer("a"), newConsumer("b")}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 600 && time.Now().Before(deadline) {
		for _, cs := range consumers {
			recs, err := cs.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			for _, r := range recs {
				got[string(r.Value)]++
			}
			mu.Unlock()
		}
	}
	if len(got) != 600 {
		t.Fatalf("consumed %d of 600", len(got))
	}
	// Let the rebalance finish (a released partitions b has yet to take).
	for range 10 {
		if len(consumers[0].Assignment())+len(consumers[1].Assignment()) == 6 && len(consumers[1].Assignment()) > 0 {
			break
		}
		for _, cs := range consumers {
			if _, err := cs.Poll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := consumers[0].Assignment(), consumers[1].Assignment()
	if len(a)+len(b) != 6 || len(a) == 0 || len(b) == 0 || assignedCalls.Load() < 2 {
		t.Fatalf("assignments %v and %v (%d assigned callbacks)", a, b, assignedCalls.Load())
	}
	for _, x := range a {
		if slices.Contains(b, x) {
			t.Fatalf("%v assigned to both", x)
		}
	}
	// Seek back one partition and read it again.
	tp := a[0]
	consumers[0].Seek(tp, 0)
	again := 0
	for range 5 {
		recs, err := consumers[0].Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Topic == tp.Topic && r.Partition == tp.Partition {
				again++
			}
		}
	}
	if again == 0 {
		t.Fatal("Seek did not rewind")
	}
	for _, cs := range consumers {
		if err := cs.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Both committed and left: the group is empty with no lag.
	lag, err := c.GroupLag(ctx, "g")
	if err != nil || lag.TotalLag != 0 {
		t.Fatalf("lag %+v %v", lag, err)
	}
	g, _ := c.Group(ctx, "g")
	if g.State != "empty" {
		t.Fatalf("group state %s after both closed", g.State)
	}
}

func TestAdminAndErrors(t *testing.T) {
	base := memServer(t)
	ctx := context.Background()
	if _, err := client.New("ftp://x"); err == nil {
		t.Fatal("a non-http URL was accepted")
	}
	if _, err := client.New(base, client.WithRetry(0, time.Second, time.Second)); err == nil {
		t.Fatal("invalid retry accepted")
	}
	c, _ := client.New(base, client.WithBearerToken("t0ken"))
	if _, err := c.CreateTopic(ctx, "a", 2, &api.TopicConfig{RetentionMs: ptr(int64(60000))}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateTopic(ctx, "a", 2, nil)
	if client.Code(err) != api.CodeTopicExists || client.IsRetryable(err) {
		t.Fatalf("duplicate create: %v", err)
	}
	var n int
	for tp, err := range c.Topics(ctx) {
		if err != nil || tp.Name != "a" {
			t.Fatal(tp, err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d topics", n)
	}
	if _, err := c.UpdateTopic(ctx, "a", ptr(int32(1)), nil); client.Code(err) != api.CodeInvalidRequest {
		t.Fatalf("shrink: %v", err)
	}
	res, err := c.Produce(ctx, "a", []client.Record{{Partition: 1, Key: []byte{0xff}, Value: []byte{0, 1, 2}, Headers: []client.Header{{Key: "h", Value: nil}}}})
	if err != nil || res[0].Error != nil {
		t.Fatal(res, err)
	}
	off := int64(0)
	rr, err := c.Read(ctx, "a", 1, client.ReadOptions{Offset: &off})
	if err != nil || len(rr.Records) != 1 || string(rr.Records[0].Value) != "\x00\x01\x02" || rr.Records[0].Key[0] != 0xff || rr.Records[0].Headers[0].Value != nil {
		t.Fatalf("binary round trip %+v %v", rr, err)
	}
	p, _ := c.NewProducer(ctx, "a")
	if _, err := p.Produce(ctx, client.Record{}.InPartition(5)).Wait(ctx); err == nil {
		t.Fatal("out-of-range partition accepted")
	}
	if _, err := p.Produce(ctx, client.Record{Value: make([]byte, 2<<20)}).Wait(ctx); !errors.Is(err, client.ErrRecordTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	_ = p.Close(ctx)
	if _, err := p.Produce(ctx, client.Record{Partition: 0}).Wait(ctx); !errors.Is(err, client.ErrProducerClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := c.DeleteTopic(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Topic(ctx, "a"); client.Code(err) != api.CodeUnknownTopic {
		t.Fatalf("deleted topic: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestZeroValueRecordIsPartitionedByKey: a Record with only a key and a
// value goes where Kafka's partitioner puts the key (a zero Partition does
// not pin it to partition 0); Pinned records go where they say.
func TestZeroValueRecordIsPartitionedByKey(t *testing.T) {
	ctx := context.Background()
	c, err := client.New(memServer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, "zero", 8, nil); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "zero", client.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for i := range 20 {
		key := fmt.Appendf(nil, "user-%d", i)
		d, err := p.Produce(ctx, client.Record{Key: key, Value: []byte("v")}).Wait(ctx)
		if err != nil || d.Partition != kafkahash.Partition(key, 8) {
			t.Fatalf("%s went to %d (%v), Kafka's partitioner says %d", key, d.Partition, err, kafkahash.Partition(key, 8))
		}
		d, err = p.Produce(ctx, client.Record{Key: key, Value: []byte("v")}.InPartition(5)).Wait(ctx)
		if err != nil || d.Partition != 5 {
			t.Fatalf("pinned record went to %d (%v)", d.Partition, err)
		}
	}
	res, err := c.Produce(ctx, "zero", []client.Record{{Key: []byte("user-3"), Value: []byte("v")}})
	if err != nil || *res[0].Partition != kafkahash.Partition([]byte("user-3"), 8) {
		t.Fatalf("server-side partitioning of a zero-value record: %+v %v", res, err)
	}
}

// TestNoServerOrAWSImports: the SDK must stay light and independent.
func TestNoServerOrAWSImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/streambed/streambed/pkg/api", "github.com/streambed/streambed/pkg/kafkahash", "github.com/streambed/streambed/pkg/retry", "github.com/streambed/streambed/pkg/client"}
	for _, dep := range strings.Fields(string(out)) {
		// The standard library, and nothing of ours but the wire types,
		// the partitioner and the shared retry policy.
		if strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") && !slices.Contains(allowed, dep) {
			t.Errorf("pkg/client depends on %s", dep)
		}
	}
}

// countingTransport measures produce requests (count and body bytes).
type countingTransport struct {
	next            http.RoundTripper
	requests, bytes atomic.Int64
}

func (ct *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/records") {
		ct.requests.Add(1)
		ct.bytes.Add(req.ContentLength)
	}
	return ct.next.RoundTrip(req)
}

// BenchmarkProducerSteady produces 1 KiB records as fast as the embedded
// server takes them and reports records/s and the mean request size: the
// defaults should give ~1 MiB requests (one S3 object each).
func BenchmarkProducerSteady(b *testing.B) {
	base := embedded(b)
	ct := &countingTransport{next: http.DefaultTransport}
	c, _ := client.New(base, client.WithHTTPClient(&http.Client{Transport: ct, Timeout: time.Minute}))
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, "bench", 4, nil); err != nil {
		b.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p.Produce(ctx, client.Record{Key: fmt.Appendf(nil, "k%d", i%1000), Value: value})
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ct.bytes.Load())/float64(max(ct.requests.Load(), 1))/(1<<20), "MiB/request")
}

// slowLoss forwards the first batch's first request, loses its answer, and
// reports the failure only after a pause, so later batches of the same
// partition are acknowledged before the first is retried.
type slowLoss struct {
	once sync.Once
	next http.RoundTripper
}

func (s *slowLoss) RoundTrip(req *http.Request) (*http.Response, error) {
	lose := false
	if req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/records") {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), `"base_sequences":{"0":0}`) { // the first batch
			s.once.Do(func() { lose = true })
		} else {
			time.Sleep(30 * time.Millisecond) // let the first batch commit first
		}
	}
	resp, err := s.next.RoundTrip(req)
	if lose && err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(300 * time.Millisecond)
		return nil, errors.New("injected: answer lost")
	}
	return resp, err
}

// TestRetryAfterLaterBatchesSucceeded: the first batch commits but its
// answer is lost; the next batches succeed meanwhile. Its retry must still
// be within the server's 5-batch window, so it is recognized as a
// duplicate — not refused out of order, which would fail the producer.
func TestRetryAfterLaterBatchesSucceeded(t *testing.T) {
	base := embedded(t)
	ctx := context.Background()
	c, _ := client.New(base, client.WithHTTPClient(&http.Client{Transport: &slowLoss{next: http.DefaultTransport}}))
	if _, err := c.CreateTopic(ctx, "window", 1, nil); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "window", client.WithBatchBytes(512), client.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		p.Produce(ctx, client.Record{Value: fmt.Appendf(nil, "r%05d", i)}.InPartition(0))
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := c.Read(ctx, "window", 0, client.ReadOptions{MaxRecords: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 3000 {
		t.Fatalf("%d records stored, want 3000", len(res.Records))
	}
	for i, r := range res.Records {
		if want := fmt.Sprintf("r%05d", i); string(r.Value) != want {
			t.Fatalf("offset %d holds %s, want %s", i, r.Value, want)
		}
	}
}
