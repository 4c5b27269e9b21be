package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Baseline measures the raw storage under the broker with the run's object
// size: object PUT and ranged GET, and a metadata transaction shaped like
// a produce commit (head, index entry, object reference).
type Baseline struct {
	ObjectBytes    int64   `json:"object_bytes"`
	Concurrency    int     `json:"concurrency"`
	PutLatency     Latency `json:"put_latency"`
	PutMBps        float64 `json:"put_mb_per_s"`
	GetLatency     Latency `json:"get_latency"`
	GetMBps        float64 `json:"get_mb_per_s"`
	CommitLatency  Latency `json:"metadata_transaction_latency"`
	CommitsPerSecs float64 `json:"metadata_transactions_per_s"`
}

// Overhead compares the broker with its storage: a produce's latency over
// one PUT plus one transaction, and produce throughput over raw PUT
// throughput at the same concurrency.
type Overhead struct {
	ProduceP50OverStorageP50 float64 `json:"produce_p50_over_put_plus_commit_p50"`
	ThroughputOverRawPut     float64 `json:"produce_throughput_over_raw_put"`
}

// RunBaseline writes and reads objects of size bytes with concurrency
// workers for d each, and commits metadata transactions for d.
func RunBaseline(ctx context.Context, bucket segments.Bucket, table offsets.Table, size int64, concurrency int, d time.Duration) (*Baseline, error) {
	size = max(size, 1024)
	b := &Baseline{ObjectBytes: size, Concurrency: concurrency}
	body := make([]byte, size)
	prefix := fmt.Sprintf("baseline/%d", time.Now().UnixNano())
	var keys []string
	var kmu sync.Mutex
	measure := func(op func(w, i int) error) ([]int64, float64, error) {
		r := timed(ctx, concurrency, d, op, true)
		return r.lat, float64(r.ok) / r.elapsed.Seconds(), r.err
	}
	lat, rate, err := measure(func(w, i int) error {
		k := fmt.Sprintf("%s/%d-%d", prefix, w, i)
		if err := bucket.Put(ctx, k, body); err != nil {
			return err
		}
		kmu.Lock()
		keys = append(keys, k)
		kmu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("baseline put: %w", err)
	}
	b.PutLatency, b.PutMBps = percentiles(lat), rate*float64(size)/1e6
	lat, rate, err = measure(func(w, i int) error {
		k := keys[(w*7919+i)%len(keys)]
		_, err := bucket.GetRange(ctx, k, 0, size)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("baseline get: %w", err)
	}
	b.GetLatency, b.GetMBps = percentiles(lat), rate*float64(size)/1e6
	for _, k := range keys {
		_ = bucket.Delete(ctx, k)
	}
	value := make([]byte, 200)
	var written []offsets.Key
	defer func() { // the baseline leaves nothing behind
		for _, k := range written {
			_ = table.Write(context.WithoutCancel(ctx), offsets.Delete(k, offsets.AnyVersion))
		}
	}()
	lat, rate, err = measure(func(w, i int) error {
		pk := fmt.Sprintf("%s/w%d", prefix, w)
		kmu.Lock()
		for _, sk := range []string{fmt.Sprintf("head-%d", i), fmt.Sprintf("seg#%020d", i), fmt.Sprintf("ref-%d", i)} {
			written = append(written, offsets.Key{PK: pk, SK: sk})
		}
		kmu.Unlock()
		return table.Write(ctx,
			offsets.Put(offsets.Key{PK: pk, SK: fmt.Sprintf("head-%d", i)}, 0, value),
			offsets.Put(offsets.Key{PK: pk, SK: fmt.Sprintf("seg#%020d", i)}, 0, value),
			offsets.Put(offsets.Key{PK: pk, SK: fmt.Sprintf("ref-%d", i)}, 0, value))
	})
	if err != nil {
		return nil, fmt.Errorf("baseline metadata transaction: %w", err)
	}
	b.CommitLatency, b.CommitsPerSecs = percentiles(lat), rate
	return b, nil
}

// CompareWith fills r's overhead against b.
func (r *Result) CompareWith(b *Baseline) {
	r.Baseline = b
	storage := b.PutLatency.P50 + b.CommitLatency.P50
	o := &Overhead{}
	if storage > 0 {
		o.ProduceP50OverStorageP50 = r.ProduceLatency.P50 / storage
	}
	if b.PutMBps > 0 {
		o.ThroughputOverRawPut = r.ProduceMBps / b.PutMBps
	}
	r.Overhead = o
}

// timedRun is what timed measured.
type timedRun struct {
	lat     []int64 // nanoseconds of each successful op
	ok      int64
	failed  int64
	err     error // the first failure
	elapsed time.Duration
}

// timed runs op in workers goroutines for d (op gets the worker and its
// iteration). A worker stops at its first error when stop is set, and
// carries on counting failures otherwise.
func timed(ctx context.Context, workers int, d time.Duration, op func(w, i int) error, stop bool) timedRun {
	var (
		mu  sync.Mutex
		out timedRun
		wg  sync.WaitGroup
	)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var local []int64
			var failed int64
			var first error
			for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					failed++
					if first == nil {
						first = err
					}
					if stop {
						break
					}
					continue
				}
				local = append(local, time.Since(t0).Nanoseconds())
			}
			mu.Lock()
			out.lat = append(out.lat, local...)
			out.ok += int64(len(local))
			out.failed += failed
			if out.err == nil {
				out.err = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}
