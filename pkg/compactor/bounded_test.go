package compactor_test

import (
	"context"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// keyedWorkload appends n records with keys drawn from keys distinct ones
// (every seventh value a tombstone), in requests of 1000, then one filler
// record so everything before it can be compacted. It returns the latest
// value per key as the reference algorithm sees it: the last record of
// each key, tombstones removed. Values are the same on every call.
func keyedWorkload(t testing.TB, e *env, topic string, n, keys, valueBytes int) map[string]string {
	t.Helper()
	want := map[string]string{}
	rnd := mrand.NewChaCha8([32]byte{7})
	val := make([]byte, valueBytes)
	for i := 0; i < n; i += 1000 {
		recs := make([]segments.Record, min(1000, n-i))
		for j := range recs {
			k := fmt.Sprintf("key-%07d", (i+j)*7919%keys)
			_, _ = rnd.Read(val) // incompressible, and the same every run
			v := append(fmt.Appendf(nil, "%d:", i+j), val...)
			if (i+j)%7 == 3 {
				v = nil
			}
			recs[j] = segments.Record{Timestamp: broker.NoTimestamp, Key: []byte(k), Value: v}
			if v == nil {
				delete(want, k)
			} else {
				want[k] = string(v)
			}
		}
		if _, err := e.b.ProducePartition(e.ctx, topic, 0, broker.PartitionProduce{Records: recs, ExpectedOffset: -1}); err != nil {
			t.Fatal(err)
		}
	}
	e.produce(topic, 0, 1, broker.NoTimestamp, func(int) string { return "filler" }, value)
	want["filler"] = string(value(0))
	return want
}

// compactUntilDone runs c until a run neither removes records nor leaves
// work behind, and returns how many runs that took.
func compactUntilDone(t testing.TB, ctx context.Context, c *compactor.Compactor) int {
	t.Helper()
	for runs := 1; runs < 100; runs++ {
		st, err := c.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Errors > 0 {
			t.Fatalf("run %d: %+v", runs, st)
		}
		if st.RecordsRemoved == 0 && st.PartitionsBehind == 0 {
			return runs
		}
	}
	t.Fatal("compaction never finished")
	return 0
}

// latestValues reads a partition and checks every key appears once.
func latestValues(t testing.TB, e *env, topic string) map[string]string {
	t.Helper()
	got, _ := e.readAll(topic, 0)
	out := map[string]string{}
	for off, r := range got {
		k, v, _ := cut(r)
		if _, dup := out[k]; dup {
			t.Fatalf("key %s appears twice (again at %d)", k, off)
		}
		out[k] = v
	}
	return out
}

// TestBoundedKeyCompactionMatchesUnbounded: a partition whose keys need
// many times the map budget is compacted over several passes to exactly
// what one unbounded pass produces, and what the reference algorithm (the
// latest record of each key, tombstones gone) says.
func TestBoundedKeyCompactionMatchesUnbounded(t *testing.T) {
	var results [2]map[string]string
	var runs [2]int
	for i, budget := range []int64{1 << 10, 1 << 30} { // the smallest map (1024 keys), and room for all
		e := newEnv(t, embedded)
		e.topic("kc", 1, func(c *offsets.TopicConfig) { c.CleanupPolicy = "compact"; c.DeleteRetentionMs = 0 })
		want := keyedWorkload(t, e, "kc", 20_000, 6_000, 20)
		e.clock.advance(time.Second) // past delete_retention_ms = 0
		runs[i] = compactUntilDone(t, e.ctx, e.compactor(compactor.Config{KeyCompactMemory: budget}))
		results[i] = latestValues(t, e, "kc")
		e.fsck(false)
		if !maps.Equal(results[i], want) {
			t.Fatalf("budget %d: %d keys left, the reference algorithm keeps %d", budget, len(results[i]), len(want))
		}
	}
	if !maps.Equal(results[0], results[1]) {
		t.Fatal("bounded and unbounded compaction disagree")
	}
	if runs[0] < 3 || runs[1] > 2 {
		t.Fatalf("runs: bounded %d (want several passes), unbounded %d", runs[0], runs[1])
	}
	t.Logf("6000 keys: %d runs with a map of 1024 keys, %d with room for all", runs[0], runs[1])
}

// TestKeyCompactionMemoryIsBounded: compacting a partition 8× larger than
// the map budget keeps the heap within the budget plus a fixed overhead.
// The overhead is a few batches (source, pending, encoded), the zstd
// encoder and the streamed upload's buffer.
func TestKeyCompactionMemoryIsBounded(t *testing.T) {
	const (
		budget   = 2 << 20
		overhead = 24 << 20
	)
	e := newEnv(t, embedded)
	e.topic("big", 1, func(c *offsets.TopicConfig) { c.CleanupPolicy = "compact"; c.DeleteRetentionMs = 0 })
	// 18 MiB of records: 100,000 of about 190 bytes over 80,000 keys,
	// whose map would need 5 MiB.
	keyedWorkload(t, e, "big", 100_000, 80_000, 200)
	var total int64
	entries, _, err := e.store.Index(e.ctx, mustTopicID(t, e, "big"), 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		total += en.Length
	}
	if total < 8*budget {
		t.Fatalf("partition of %d bytes, want at least 8× the %d budget", total, budget)
	}
	e.clock.advance(time.Second)

	defer debug.SetGCPercent(debug.SetGCPercent(10)) // the heap then tracks what is live
	runtime.GC()
	base := heapBytes()
	peak := base
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				peak = max(peak, heapBytes())
			}
		}
	})
	runs := compactUntilDone(t, e.ctx, e.compactor(compactor.Config{KeyCompactMemory: budget}))
	close(stop)
	wg.Wait()
	grew := peak - base
	t.Logf("partition %.1f MiB, map budget %.1f MiB: peak heap %.1f MiB above the start over %d runs", float64(total)/(1<<20), float64(budget)/(1<<20), float64(grew)/(1<<20), runs)
	if grew > budget+overhead {
		t.Fatalf("heap grew %.1f MiB, over the %.1f MiB budget plus %.1f MiB overhead", float64(grew)/(1<<20), float64(budget)/(1<<20), float64(overhead)/(1<<20))
	}
	if runs < 3 {
		t.Fatalf("%d runs: the map should have needed several passes", runs)
	}
	e.fsck(false)
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func mustTopicID(t testing.TB, e *env, name string) string {
	t.Helper()
	tp, err := e.b.Topic(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return tp.ID
}

// TestSweepHasTimeUnderLoad: when partitions have more work than a run's
// budget, the run still keeps time to sweep orphans (and collect garbage).
func TestSweepHasTimeUnderLoad(t *testing.T) {
	e := newEnv(t, embedded)
	e.topic("busy", 40, nil)
	for p := range int32(40) {
		for range 3 {
			e.produce("busy", p, 1, broker.NoTimestamp, nil, value)
		}
	}
	if err := e.bucket.Put(e.ctx, "l0/zz/orphan", []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	// Each look at the clock costs 20 ms of a 1 s budget: the partitions
	// alone would take far longer.
	var mu sync.Mutex
	now := e.clock.now().Add(2 * time.Hour)
	tick := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(20 * time.Millisecond)
		return now
	}
	c := compactor.New(e.store, e.bucket, compactor.Config{Now: tick, Budget: time.Second, MergeMinBytes: 1, MergeMinAge: time.Nanosecond})
	st, err := c.Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PartitionsBehind == 0 || st.OrphansDeleted != 1 {
		t.Fatalf("partitions behind %d, orphans deleted %d: the sweep should have had its share of the run", st.PartitionsBehind, st.OrphansDeleted)
	}
}
