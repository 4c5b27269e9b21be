package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// slowBucket makes uploads take a while, so requests queue behind them.
type slowBucket struct {
	segments.Bucket
	delay time.Duration
	fail  func(key string) bool
}

func (s *slowBucket) Put(ctx context.Context, key string, body []byte) error {
	time.Sleep(s.delay)
	if s.fail != nil && s.fail(key) {
		return fmt.Errorf("%w: injected", segments.ErrRefused)
	}
	return s.Bucket.Put(ctx, key, body)
}

// TestGroupCommitSharesFlushes: 64 concurrent requests to one partition
// share a few objects and commits; each request's records stay contiguous,
// every offset is used once, and requests that fail their own conditions
// (an expected offset, a fencing token, a producer sequence) fail alone.
// Serial flushes, and three in flight at once.
func TestGroupCommitSharesFlushes(t *testing.T) {
	for _, inflight := range []int{1, 3} {
		t.Run(fmt.Sprintf("in-flight=%d", inflight), func(t *testing.T) { testSharedFlushes(t, inflight) })
	}
}

func testSharedFlushes(t *testing.T, inflight int) {
	ctx := context.Background()
	table := faults.WrapTable(memtable.New(), nil)
	bucket := faults.WrapBucket(&slowBucket{Bucket: membucket.New(), delay: 20 * time.Millisecond}, nil)
	b := New(offsets.New(table), bucket, Config{Flush: FlushConfig{MaxInFlight: inflight}})
	if _, err := b.CreateTopic(ctx, "g", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	token := "owner"
	if err := b.SetFenceToken(ctx, "g", 0, nil, token); err != nil {
		t.Fatal(err)
	}
	stale := "someone-else"
	const n = 64
	type out struct {
		res PartitionResult
		err error
	}
	outs := make([]out, n)
	var wg sync.WaitGroup
	puts, writes := bucket.Counts().Put, table.Counts().Write
	for i := range n {
		wg.Go(func() {
			req := PartitionProduce{ExpectedOffset: -1}
			for j := range 3 {
				req.Records = append(req.Records, segments.Record{Timestamp: NoTimestamp, Value: fmt.Appendf(nil, "%d/%d", i, j)})
			}
			switch i {
			case 7:
				req.ExpectedOffset = 1 << 40 // never the log end
			case 11:
				req.FenceToken = &stale
			case 13:
				req.Producer = &offsets.ProducerID{ID: 5, FirstSeq: 4} // a new producer must start at 0
			case 17:
				req.FenceToken = &token
			}
			outs[i].res, outs[i].err = b.ProducePartition(ctx, "g", 0, req)
		})
	}
	wg.Wait()
	var om *offsets.OffsetMismatchError
	switch {
	case !errors.As(outs[7].err, &om):
		t.Fatalf("request with a wrong expected offset: %v", outs[7].err)
	case !errors.Is(outs[11].err, offsets.ErrFenced):
		t.Fatalf("request with a stale fencing token: %v", outs[11].err)
	case !errors.Is(outs[13].err, offsets.ErrOutOfOrderSequence):
		t.Fatalf("request with a bad sequence: %v", outs[13].err)
	}
	var bases []int64
	for i, o := range outs {
		if i == 7 || i == 11 || i == 13 {
			continue
		}
		if o.err != nil || o.res.Last != o.res.Base+2 {
			t.Fatalf("request %d: %+v %v", i, o.res, o.err)
		}
		bases = append(bases, o.res.Base)
	}
	slices.Sort(bases)
	for i, base := range bases {
		if base != int64(3*i) {
			t.Fatalf("bases %v are not dense", bases)
		}
	}
	// Every request's records are where its result says.
	got, err := b.Fetch(ctx, FetchRequest{Topic: "g", Partition: 0, Offset: 0, MaxRecords: 1000})
	if err != nil || len(got.Records) != 3*(n-3) {
		t.Fatalf("read back %d records: %v", len(got.Records), err)
	}
	for i, o := range outs {
		if o.err != nil {
			continue
		}
		for j := range 3 {
			if v := string(got.Records[o.res.Base+int64(j)].Value); v != fmt.Sprintf("%d/%d", i, j) {
				t.Fatalf("offset %d holds %q, request %d's record %d", o.res.Base+int64(j), v, i, j)
			}
		}
	}
	st := b.FlushStats()
	objects, commits := bucket.Counts().Put-puts, table.Counts().Write-writes
	t.Logf("%d requests: %d flushes, %d objects, %d metadata writes", n, st.Flushes, objects, commits)
	if objects > n/4 || st.Flushes > n/4 {
		t.Fatalf("%d requests took %d objects (%d flushes): they should have shared", n, objects, st.Flushes)
	}
}

// TestFailedUploadFailsItsFlushOnly: an upload that fails answers every
// request of its flush "not committed"; the next flush is unaffected.
func TestFailedUploadFailsItsFlushOnly(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	failures := 1
	bucket := &slowBucket{Bucket: membucket.New(), delay: 10 * time.Millisecond, fail: func(string) bool {
		mu.Lock()
		defer mu.Unlock()
		failures--
		return failures >= 0
	}}
	b := New(offsets.New(memtable.New()), bucket, Config{})
	if _, err := b.CreateTopic(ctx, "f", 2, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = b.ProducePartition(ctx, "f", int32(i%2), PartitionProduce{Records: []segments.Record{{Timestamp: NoTimestamp, Value: []byte("x")}}, ExpectedOffset: -1})
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			if !errors.Is(err, ErrNotCommitted) {
				t.Fatalf("a failed upload answered %v, want ErrNotCommitted", err)
			}
			failed++
		}
	}
	st, _ := b.Partitions(ctx, "f")
	if failed == 0 || failed == len(errs) || st[0].LogEnd+st[1].LogEnd != int64(len(errs)-failed) {
		t.Fatalf("%d of %d failed; log ends %d and %d", failed, len(errs), st[0].LogEnd, st[1].LogEnd)
	}
}

// TestGroupCommitOff writes each request on its own.
func TestGroupCommitOff(t *testing.T) {
	ctx := context.Background()
	bucket := faults.WrapBucket(&slowBucket{Bucket: membucket.New(), delay: 5 * time.Millisecond}, nil)
	b := New(offsets.New(memtable.New()), bucket, Config{Flush: FlushConfig{Off: true}})
	if _, err := b.CreateTopic(ctx, "o", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := b.ProducePartition(ctx, "o", 0, PartitionProduce{Records: []segments.Record{{Timestamp: NoTimestamp, Value: []byte("x")}}, ExpectedOffset: -1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if puts := bucket.Counts().Put; puts != 8 {
		t.Fatalf("%d objects for 8 requests with group commit off", puts)
	}
}

// TestLoneRequestsDoNotWait: a flush waits for clients the previous one
// answered only while it expects them; one client sending requests one
// after another never waits out the delay.
func TestLoneRequestsDoNotWait(t *testing.T) {
	ctx := context.Background()
	bucket := &slowBucket{Bucket: membucket.New(), delay: 400 * time.Millisecond}
	b := New(offsets.New(memtable.New()), bucket, Config{Flush: FlushConfig{Delay: 10 * time.Second}})
	if _, err := b.CreateTopic(ctx, "lone", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	// Uploads take 400 ms, so a flush could wait up to 100 ms for the
	// client it answered; this one thinks for 150 ms between requests.
	for i := range 5 {
		start := time.Now()
		if _, err := b.ProducePartition(ctx, "lone", 0, PartitionProduce{Records: []segments.Record{{Timestamp: NoTimestamp, Value: []byte("x")}}, ExpectedOffset: -1}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 480*time.Millisecond {
			t.Fatalf("request %d took %s, a 400 ms upload and a wait for requests that were not coming", i, took)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if st := b.FlushStats(); st.Flushes != 5 {
		t.Fatalf("%d flushes for 5 lone requests", st.Flushes)
	}
}
