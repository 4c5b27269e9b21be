package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/client"
)

// post sends a JSON request and decodes the answer (or the problem).
func post(ctx context.Context, hc *http.Client, url string, body, out any) (int, *api.Problem, error) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var p api.Problem
		_ = json.Unmarshal(raw, &p)
		return resp.StatusCode, &p, nil
	}
	return resp.StatusCode, nil, json.Unmarshal(raw, out)
}

func rec(v string) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"value":%q}`, v)) }

// dropping loses the response of a share of requests after the server
// handled them, as a connection reset would.
type dropping struct {
	rate    float64
	mu      sync.Mutex
	rnd     *rand.Rand
	dropped atomic.Int64
}

func (d *dropping) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	d.mu.Lock()
	drop := d.rnd.Float64() < d.rate
	d.mu.Unlock()
	if err == nil && drop {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d.dropped.Add(1)
		return nil, fmt.Errorf("injected: response lost")
	}
	return resp, err
}

// TestRetryStorm sends every partition-level produce of idempotent
// producers 1-3 times with the same id/epoch/sequence, concurrently, with
// a share of responses lost after the server answered: each batch must be
// stored once, and every successful answer must name the same offsets.
func TestRetryStorm(t *testing.T) {
	for _, mk := range backends(t) {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			s := seed(t)
			t.Logf("seed %d", s)
			c := newCluster(t, be, s, false)
			ctx := context.Background()
			cl, _ := client.New(c.url)
			const parts = 4
			if _, err := cl.CreateTopic(ctx, "storm", parts, nil); err != nil {
				t.Fatal(err)
			}
			d := &dropping{rate: 0.2, rnd: rand.New(rand.NewPCG(s, 7))}
			hc := &http.Client{Transport: d, Timeout: 30 * time.Second}
			batches := 30
			if be.name != "embedded" {
				batches = 12
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			answers := map[string][]int64{} // batch -> base offsets answered
			for w := range parts * 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var pr api.Producer
					if _, p, err := post(ctx, http.DefaultClient, c.url+"/v1/producers", struct{}{}, &pr); err != nil || p != nil {
						t.Errorf("producer id: %v %v", err, p)
						return
					}
					part := w % parts
					rnd := rand.New(rand.NewPCG(s, uint64(w)))
					for b := range batches {
						seq := int32(b * 3)
						body := api.PartitionProduceRequest{Producer: &api.ProducerRef{ID: pr.ProducerID, BaseSequence: seq},
							Records: []json.RawMessage{rec(fmt.Sprintf("w%d-%03d-a", w, b)), rec(fmt.Sprintf("w%d-%03d-b", w, b)), rec(fmt.Sprintf("w%d-%03d-c", w, b))}}
						url := fmt.Sprintf("%s/v1/topics/storm/partitions/%d/records", c.url, part)
						key := fmt.Sprintf("w%d-%03d", w, b)
						succeeded := false
						for attempt := 0; attempt < 20 && !succeeded; attempt++ {
							n := 1 + rnd.IntN(3) // the same request 1-3 times at once
							var sub sync.WaitGroup
							for range n {
								sub.Add(1)
								go func() {
									defer sub.Done()
									var out api.PartitionProduceResponse
									status, p, err := post(ctx, hc, url, body, &out)
									if err != nil || p != nil {
										if p != nil && !p.Retryable && p.Code != api.CodeOutOfOrderSequence {
											t.Errorf("%s: %d %s: %s", key, status, p.Code, p.Detail)
										}
										return
									}
									mu.Lock()
									answers[key] = append(answers[key], out.BaseOffset)
									mu.Unlock()
								}()
							}
							sub.Wait()
							mu.Lock()
							succeeded = len(answers[key]) > 0
							mu.Unlock()
						}
						if !succeeded {
							t.Errorf("%s never acknowledged", key)
							return
						}
					}
				}()
			}
			wg.Wait()
			stored := map[string]int64{}
			for p := range int32(parts) {
				res, err := cl.Read(ctx, "storm", p, client.ReadOptions{MaxRecords: 10000})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res.Records {
					if _, dup := stored[string(r.Value)]; dup {
						t.Fatalf("%s stored twice", r.Value)
					}
					stored[string(r.Value)] = r.Offset
				}
			}
			retries := 0
			for key, bases := range answers {
				retries += len(bases) - 1
				for _, b := range bases {
					if b != bases[0] {
						t.Fatalf("%s answered with base offsets %v: a retry must get the original offsets", key, bases)
					}
				}
				if stored[key+"-a"] != bases[0] {
					t.Fatalf("%s acknowledged at %d, stored at %d", key, bases[0], stored[key+"-a"])
				}
			}
			if want := parts * 2 * batches * 3; len(stored) != want {
				t.Fatalf("%d records stored, want %d", len(stored), want)
			}
			t.Logf("%d batches, %d duplicate answers with the original offsets, %d responses dropped; each record stored once",
				len(answers), retries, d.dropped.Load())
		})
	}
}

// TestFirstWriteRace: producers race to write offset 0 of fresh partitions
// with expected_offset 0. Exactly one wins each partition; the others get
// 409 expected_offset_mismatch, and the stored record is the winner's.
func TestFirstWriteRace(t *testing.T) {
	for _, mk := range backends(t) {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			producers, partitions := 64, int32(100)
			if be.name != "embedded" {
				producers, partitions = 64, 20 // moto is serialized: fewer partitions keep CI quick
			}
			c := newCluster(t, be, seed(t), false)
			ctx := context.Background()
			cl, _ := client.New(c.url)
			if _, err := cl.CreateTopic(ctx, "race", partitions, nil); err != nil {
				t.Fatal(err)
			}
			winners := make([]atomic.Int32, partitions)
			for i := range winners {
				winners[i].Store(-1)
			}
			var wins, losses atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for w := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for p := range partitions {
						zero := int64(0)
						body := api.PartitionProduceRequest{ExpectedOffset: &zero, Records: []json.RawMessage{rec(fmt.Sprintf("writer-%d", w))}}
						var out api.PartitionProduceResponse
						for {
							status, prob, err := post(ctx, http.DefaultClient, fmt.Sprintf("%s/v1/topics/race/partitions/%d/records", c.url, p), body, &out)
							switch {
							case err != nil:
								t.Error(err)
								return
							case prob == nil:
								if !winners[p].CompareAndSwap(-1, int32(w)) {
									t.Errorf("partition %d: writers %d and %d both won offset 0", p, winners[p].Load(), w)
								}
								wins.Add(1)
							case prob.Code == api.CodeExpectedOffset:
								losses.Add(1)
							case prob.Retryable && prob.SideEffect == api.SideEffectNone:
								continue
							default:
								t.Errorf("partition %d: %d %s: %s", p, status, prob.Code, prob.Detail)
							}
							break
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			for p := range partitions {
				res, err := cl.Read(ctx, "race", p, client.ReadOptions{MaxRecords: 10})
				if err != nil {
					t.Fatal(err)
				}
				w := winners[p].Load()
				if len(res.Records) != 1 || res.Records[0].Offset != 0 || string(res.Records[0].Value) != fmt.Sprintf("writer-%d", w) {
					t.Fatalf("partition %d holds %d records (winner %d): %+v", p, len(res.Records), w, res.Records)
				}
			}
			t.Logf("%d producers x %d partitions: %d wins, %d refused with expected_offset_mismatch", producers, partitions, wins.Load(), losses.Load())
		})
	}
}

// TestZombieWriterFenced: a producer whose epoch was bumped by its
// successor resumes writing; every write of the zombie is refused and the
// log holds exactly what the live producer and the zombie (before the
// bump) wrote.
func TestZombieWriterFenced(t *testing.T) {
	for _, mk := range backends(t) {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			c := newCluster(t, be, seed(t), false)
			ctx := context.Background()
			cl, _ := client.New(c.url)
			if _, err := cl.CreateTopic(ctx, "zombie", 1, nil); err != nil {
				t.Fatal(err)
			}
			var pr api.Producer
			if _, p, err := post(ctx, http.DefaultClient, c.url+"/v1/producers", struct{}{}, &pr); err != nil || p != nil {
				t.Fatal(err, p)
			}
			url := c.url + "/v1/topics/zombie/partitions/0/records"
			write := func(epoch int16, seq int32, v string) *api.Problem {
				var out api.PartitionProduceResponse
				_, p, err := post(ctx, http.DefaultClient, url, api.PartitionProduceRequest{
					Producer: &api.ProducerRef{ID: pr.ProducerID, Epoch: epoch, BaseSequence: seq}, Records: []json.RawMessage{rec(v)}}, &out)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			for i := range int32(5) {
				if p := write(0, i, fmt.Sprintf("old-%d", i)); p != nil {
					t.Fatal(p)
				}
			}
			if p := write(1, 0, "new-0"); p != nil { // the successor bumps the epoch
				t.Fatal(p)
			}
			for i := int32(5); i < 8; i++ { // the zombie resumes where it was
				if p := write(0, i, fmt.Sprintf("zombie-%d", i)); p == nil || p.Code != api.CodeProducerFenced {
					t.Fatalf("zombie write %d: %+v, want producer_fenced", i, p)
				}
			}
			if p := write(1, 1, "new-1"); p != nil {
				t.Fatal(p)
			}
			res, err := cl.Read(ctx, "zombie", 0, client.ReadOptions{MaxRecords: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Records {
				got = append(got, string(r.Value))
			}
			if want := "[old-0 old-1 old-2 old-3 old-4 new-0 new-1]"; fmt.Sprint(got) != want {
				t.Fatalf("log %v, want %s", got, want)
			}
		})
	}
}
