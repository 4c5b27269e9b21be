package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
		var lat []int64
		var mu sync.Mutex
		var n atomic.Int64
		var firstErr error
		var wg sync.WaitGroup
		start := time.Now()
		for w := range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local []int64
				for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
					t0 := time.Now()
					if err := op(w, i); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					local = append(local, time.Since(t0).Nanoseconds())
					n.Add(1)
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return lat, float64(n.Load()) / time.Since(start).Seconds(), firstErr
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
