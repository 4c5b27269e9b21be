package compactor_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *clock
	store  *offsets.Store
	bucket segments.Bucket
	b      *broker.Broker
}

type backend func(t testing.TB) (offsets.Table, segments.Bucket)

func embedded(t testing.TB) (offsets.Table, segments.Bucket) {
	return testenv.Embedded(t, t.TempDir())
}

func minioMoto(t testing.TB) (offsets.Table, segments.Bucket) {
	table, bucket, _ := testenv.MinIOMoto(t, "compact", 0)
	return table, bucket
}

func newEnv(t *testing.T, be backend) *env {
	table, bucket := be(t)
	c := &clock{t: time.Now().Truncate(time.Millisecond)}
	store := offsets.New(table, offsets.WithClock(c.now), offsets.WithGCGrace(time.Hour))
	b := broker.New(store, bucket, broker.Config{Now: c.now})
	return &env{t: t, ctx: context.Background(), clock: c, store: store, bucket: bucket, b: b}
}

func (e *env) compactor(cfg compactor.Config) *compactor.Compactor {
	cfg.Now = e.clock.now
	if cfg.MergeMinAge == 0 {
		cfg.MergeMinAge = time.Hour
	}
	return compactor.New(e.store, e.bucket, cfg)
}

func (e *env) topic(name string, parts int32, mod func(*offsets.TopicConfig)) {
	e.t.Helper()
	cfg := offsets.DefaultTopicConfig()
	if mod != nil {
		mod(&cfg)
	}
	if _, err := e.b.CreateTopic(e.ctx, name, parts, cfg); err != nil {
		e.t.Fatal(err)
	}
}

// produce appends n records to partition p in one request.
func (e *env) produce(topic string, p int32, n int, ts int64, keyf func(i int) string, valf func(i int) []byte) broker.PartitionResult {
	e.t.Helper()
	recs := make([]segments.Record, n)
	for i := range recs {
		recs[i] = segments.Record{Timestamp: ts, Value: valf(i)}
		if keyf != nil {
			recs[i].Key = []byte(keyf(i))
		}
	}
	res, err := e.b.ProducePartition(e.ctx, topic, p, broker.PartitionProduce{Records: recs, ExpectedOffset: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// readAll fetches a partition from its log start to its end.
func (e *env) readAll(topic string, p int32) (map[int64]string, int64) {
	e.t.Helper()
	st, err := e.b.Partitions(e.ctx, topic, p)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int64]string{}
	for off := st[0].LogStart; off < st[0].LogEnd; {
		res, err := e.b.Fetch(e.ctx, broker.FetchRequest{Topic: topic, Partition: p, Offset: off, MaxRecords: 5000})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range res.Records {
			out[r.Offset] = fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Timestamp)
		}
		off = res.NextOffset
	}
	return out, st[0].LogStart
}

func (e *env) objects() int {
	e.t.Helper()
	n := 0
	for _, err := range e.bucket.List(e.ctx, "", "") {
		if err != nil {
			e.t.Fatal(err)
		}
		n++
	}
	return n
}

func (e *env) fsck(strict bool) *compactor.Report {
	e.t.Helper()
	rep, err := compactor.Fsck(e.ctx, e.store, e.bucket, compactor.FsckOptions{Now: e.clock.now, Strict: strict, Footers: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.Clean() {
		e.t.Fatalf("fsck: %+v", rep.Violations)
	}
	return rep
}

func value(i int) []byte { return fmt.Appendf(nil, "v%04d", i) }

func Suite(t *testing.T, be backend) {
	cases := map[string]func(*testing.T, *env){
		"RetentionByTime":           testRetentionTime,
		"RetentionBySize":           testRetentionSize,
		"MergeKeepsReadsIdentical":  testMerge,
		"KeyCompaction":             testKeyCompaction,
		"GCLeavesExactlyReferenced": testGC,
		"OrphanSweep":               testOrphans,
		"OrphanSweepChecksNewOnly":  testOrphansChecksNewOnly,
		"PurgeDeletedTopic":         testPurge,
		"TwoCompactorsAndTraffic":   testConcurrent,
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, be))
		})
	}
}

func TestEmbedded(t *testing.T)  { Suite(t, embedded) }
func TestMinIOMoto(t *testing.T) { Suite(t, minioMoto) }

func testRetentionTime(t *testing.T, e *env) {
	e.topic("t", 1, func(c *offsets.TopicConfig) { c.RetentionMs = 3600_000 })
	now := e.clock.now().UnixMilli()
	for i := range 6 { // six entries, timestamps one hour apart, oldest first
		e.produce("t", 0, 10, now-int64(6-i)*3600_000+1, nil, value)
	}
	e.produce("t", 0, 10, now, nil, value)
	stats, err := e.compactor(compactor.Config{}).Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Entries 0-5 hold records 1-6 hours old, minus a millisecond: only the
	// first five are older than retention_ms; the sixth and the new one stay.
	got, start := e.readAll("t", 0)
	if start != 50 || len(got) != 20 || stats.EntriesDropped != 5 {
		t.Fatalf("log start %d, %d records left, stats %+v", start, len(got), stats)
	}
	_, err = e.b.Fetch(e.ctx, broker.FetchRequest{Topic: "t", Offset: 49})
	var oor *broker.OffsetOutOfRangeError
	if !errors.As(err, &oor) || oor.LogStart != 50 || oor.LogEnd != 70 {
		t.Fatalf("reading below the new log start: %v", err)
	}
	// Time passes: everything expires; the log is empty at its end.
	e.clock.advance(3 * time.Hour)
	if _, err := e.compactor(compactor.Config{}).Run(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, start = e.readAll("t", 0)
	if start != 70 || len(got) != 0 {
		t.Fatalf("after all expired: start %d, %d records", start, len(got))
	}
	e.fsck(false)
}

func testRetentionSize(t *testing.T, e *env) {
	e.topic("s", 1, func(c *offsets.TopicConfig) { c.RetentionBytes = 3000 })
	var lens []int64
	for range 10 { // incompressible values: about 1.1 KB per entry
		e.produce("s", 0, 10, broker.NoTimestamp, nil, func(i int) []byte { b := make([]byte, 100); _, _ = rand.Read(b); return b })
	}
	items, err := e.store.InspectPartition(e.ctx, mustTopic(t, e, "s").ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, en := range items.Entries {
		lens = append(lens, en.Length)
		total += en.Length
	}
	// Kafka's rule: drop the oldest while what remains is still >= the limit.
	want := 0
	for rest := total; want < len(lens) && rest-lens[want] >= 3000; want++ {
		rest -= lens[want]
	}
	stats, err := e.compactor(compactor.Config{}).Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, start := e.readAll("s", 0)
	if stats.EntriesDropped != want || start != int64(10*want) || want == 0 {
		t.Fatalf("dropped %d entries (start %d), want %d of sizes %v", stats.EntriesDropped, start, want, lens)
	}
	e.fsck(false)
}

func mustTopic(t *testing.T, e *env, name string) offsets.Topic {
	tp, err := e.store.Topic(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func testMerge(t *testing.T, e *env) {
	e.topic("m", 2, nil)
	for i := range 80 {
		e.produce("m", int32(i%2), 1+i%5, broker.NoTimestamp, func(j int) string { return fmt.Sprintf("k%d", j) }, func(j int) []byte { return fmt.Appendf(nil, "%d-%d", i, j) })
	}
	before := [2]map[int64]string{}
	for p := range int32(2) {
		before[p], _ = e.readAll("m", p)
	}
	objectsBefore := e.objects()
	c := e.compactor(compactor.Config{MergeMinBytes: 1, MaxMergesPerPartition: 100})
	var merged int
	for range 4 {
		stats, err := c.Run(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		merged += stats.EntriesMerged
		// Reads keep working mid-way, with identical results.
		for p := range int32(2) {
			if got, _ := e.readAll("m", p); fmt.Sprint(got) != fmt.Sprint(before[p]) {
				t.Fatalf("partition %d reads differently after a merge", p)
			}
		}
	}
	tp := mustTopic(t, e, "m")
	for p := range int32(2) {
		items, _ := e.store.InspectPartition(e.ctx, tp.ID, p)
		if len(items.Entries) != 1 {
			t.Fatalf("partition %d has %d entries after merging", p, len(items.Entries))
		}
	}
	// Old objects go once their grace period passed.
	e.clock.advance(2 * time.Hour)
	stats, err := c.Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Everything but the two final segments (one per partition) is gone:
	// the 80 produce objects and the intermediate merges.
	if merged < 80 || e.objects() != 2 || stats.ObjectsDeleted < objectsBefore-2 {
		t.Fatalf("merged %d entries; GC deleted %d; %d objects now (were %d)", merged, stats.ObjectsDeleted, e.objects(), objectsBefore)
	}
	for p := range int32(2) {
		if got, _ := e.readAll("m", p); fmt.Sprint(got) != fmt.Sprint(before[p]) {
			t.Fatalf("partition %d reads differently after GC", p)
		}
	}
	e.fsck(true)
}

func testKeyCompaction(t *testing.T, e *env) {
	e.topic("kc", 1, func(c *offsets.TopicConfig) { c.CleanupPolicy = "compact"; c.DeleteRetentionMs = 0 })
	latest := map[string]string{}
	deleted := map[string]bool{}
	for round := range 5 {
		recs := make([]segments.Record, 0, 20)
		for k := range 20 {
			key := fmt.Sprintf("user-%d", k)
			r := segments.Record{Timestamp: broker.NoTimestamp, Key: []byte(key), Value: fmt.Appendf(nil, "r%d", round)}
			if round == 3 && k%4 == 0 {
				r.Value = nil // tombstone
			}
			recs = append(recs, r)
			if r.Value == nil {
				deleted[key] = true
				delete(latest, key)
			} else {
				latest[key] = string(r.Value)
				delete(deleted, key)
			}
		}
		if round == 4 {
			recs = recs[1:] // keep user-0's tombstone the latest
			delete(latest, "user-0")
			deleted["user-0"] = true
		}
		if _, err := e.b.ProducePartition(e.ctx, "kc", 0, broker.PartitionProduce{Records: recs, ExpectedOffset: -1}); err != nil {
			t.Fatal(err)
		}
	}
	// The newest entry is the active one and is not compacted: end with a filler.
	e.produce("kc", 0, 1, broker.NoTimestamp, func(int) string { return "filler" }, value)
	latest["filler"] = "v0000"
	st, _ := e.b.Partitions(e.ctx, "kc", 0)
	e.clock.advance(time.Second) // past delete_retention_ms = 0
	stats, err := e.compactor(compactor.Config{}).Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := e.readAll("kc", 0)
	values := map[string]string{}
	for off, r := range got {
		k, v, _ := cut(r)
		if prev, dup := values[k]; dup {
			t.Fatalf("key %s twice (%s and %s at %d)", k, prev, v, off)
		}
		values[k] = v
	}
	if len(values) != len(latest) {
		t.Fatalf("%d keys left, want %d: %v", len(values), len(latest), values)
	}
	for k, v := range latest {
		if values[k] != v {
			t.Fatalf("key %s = %q, want %q", k, values[k], v)
		}
	}
	for k := range deleted {
		if _, ok := values[k]; ok {
			t.Fatalf("deleted key %s still present", k)
		}
	}
	st2, _ := e.b.Partitions(e.ctx, "kc", 0)
	if st2[0].LogEnd != st[0].LogEnd || stats.RecordsRemoved == 0 {
		t.Fatalf("log end moved (%d to %d) or nothing removed (%+v)", st[0].LogEnd, st2[0].LogEnd, stats)
	}
	e.fsck(false)
}

func cut(r string) (string, string, bool) {
	for i := range r {
		if r[i] == '=' {
			for j := len(r) - 1; j > i; j-- {
				if r[j] == '@' {
					return r[:i], r[i+1 : j], true
				}
			}
		}
	}
	return r, "", false
}

func testGC(t *testing.T, e *env) {
	e.topic("gc", 3, func(c *offsets.TopicConfig) { c.RetentionMs = 3600_000 })
	c := e.compactor(compactor.Config{MergeMinBytes: 1, MaxMergesPerPartition: 100})
	for range 3 {
		for i := range 30 {
			recs := []broker.ProduceRecord{}
			for j := range 3 {
				recs = append(recs, broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp, Key: fmt.Appendf(nil, "k%d-%d", i, j), Value: value(j)}, Partition: broker.NoPartition})
			}
			if _, err := e.b.Produce(e.ctx, "gc", recs, broker.ProduceOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Run(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.fsck(false)
		e.clock.advance(40 * time.Minute) // retention drops earlier cycles
	}
	// Everything expires; the last segments go once their grace period passed.
	for range 2 {
		e.clock.advance(3 * time.Hour)
		if _, err := c.Run(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing leaked, nothing dangling: every object is referenced.
	rep := e.fsck(true)
	if rep.Objects != 0 {
		t.Fatalf("%d objects left after everything expired", rep.Objects)
	}
}

func testOrphans(t *testing.T, e *env) {
	if err := e.bucket.Put(e.ctx, "l0/ab/orphan-old", []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	c := e.compactor(compactor.Config{})
	if stats, _ := c.Run(e.ctx); stats.OrphansDeleted != 0 {
		t.Fatal("a fresh upload was swept")
	}
	e.clock.advance(2 * time.Hour)
	if err := e.bucket.Put(e.ctx, "other/not-ours", []byte("x")); err != nil {
		t.Fatal(err)
	}
	stats, err := c.Run(e.ctx)
	if err != nil || stats.OrphansDeleted != 1 {
		t.Fatalf("orphans deleted %d, %v", stats.OrphansDeleted, err)
	}
	if _, err := e.bucket.Stat(e.ctx, "other/not-ours"); err != nil {
		t.Fatal("the sweep touched an object outside Streambed's prefixes")
	}
}

// testOrphansChecksNewOnly: a sweep pass looks up only objects the
// previous pass was too early to look at; objects it found referenced are
// never looked up again. Real time here: the bucket stamps objects with
// it, at a resolution of a second on S3.
func testOrphansChecksNewOnly(t *testing.T, e *env) {
	e.topic("live", 1, nil)
	for range 20 {
		e.produce("live", 0, 2, broker.NoTimestamp, nil, value)
	}
	const age = 2 * time.Second
	c := compactor.New(e.store, e.bucket, compactor.Config{OrphanAge: age, MergeMinAge: time.Hour})
	time.Sleep(age + time.Second)
	st, err := c.Run(e.ctx)
	if err != nil || st.OrphansChecked < 20 || st.OrphansDeleted != 0 {
		t.Fatalf("first pass: %+v %v", st, err)
	}
	if err := e.bucket.Put(e.ctx, "l0/zz/orphan-new", []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	if st, err = c.Run(e.ctx); err != nil || st.OrphansChecked != 0 {
		t.Fatalf("second pass looked up %d objects the first found referenced (or the new one, too young): %v", st.OrphansChecked, err)
	}
	time.Sleep(age + time.Second)
	if st, err = c.Run(e.ctx); err != nil || st.OrphansChecked != 1 || st.OrphansDeleted != 1 {
		t.Fatalf("third pass: checked %d, deleted %d (want the new orphan only): %v", st.OrphansChecked, st.OrphansDeleted, err)
	}
}

func testPurge(t *testing.T, e *env) {
	e.topic("gone", 2, nil)
	for i := range 6 {
		e.produce("gone", int32(i%2), 3, broker.NoTimestamp, nil, value)
	}
	if err := e.b.DeleteTopic(e.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	c := e.compactor(compactor.Config{})
	stats, err := c.Run(e.ctx)
	if err != nil || stats.TopicsPurged != 1 {
		t.Fatalf("purged %d (%v)", stats.TopicsPurged, err)
	}
	e.clock.advance(2 * time.Hour)
	if _, err := c.Run(e.ctx); err != nil {
		t.Fatal(err)
	}
	if rep := e.fsck(true); rep.Objects != 0 || rep.Entries != 0 {
		t.Fatalf("after purge and GC: %+v", rep)
	}
}

// testConcurrent runs two compactors in loops while producers and a
// consumer work, then checks every acknowledged record once at its offset.
func testConcurrent(t *testing.T, e *env) {
	e.topic("busy", 2, func(c *offsets.TopicConfig) { c.SegmentBytes = 1 << 20 })
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string][2]int64{} // value -> partition, offset
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				recs := []broker.ProduceRecord{}
				for j := range 4 {
					recs = append(recs, broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp, Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "w%d-%d-%d", w, i, j)}, Partition: broker.NoPartition})
				}
				res, err := e.b.Produce(e.ctx, "busy", recs, broker.ProduceOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, r := range res {
					if r.Err == nil {
						acked[string(recs[j].Value)] = [2]int64{int64(r.Partition), r.Offset}
					}
				}
				mu.Unlock()
			}
		}()
	}
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.compactor(compactor.Config{Owner: fmt.Sprintf("c%d", k), MergeMinBytes: 1, MaxMergesPerPartition: 100})
			for !stop.Load() {
				if _, err := c.Run(e.ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // a consumer tailing both partitions throughout
		defer wg.Done()
		next := [2]int64{}
		for !stop.Load() {
			for p := range int32(2) {
				res, err := e.b.Fetch(e.ctx, broker.FetchRequest{Topic: "busy", Partition: p, Offset: next[p], MaxRecords: 100})
				if err != nil {
					t.Error(err)
					return
				}
				next[p] = res.NextOffset
			}
		}
	}()
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	stored := [2]map[int64]string{}
	for p := range int32(2) {
		got, _ := e.readAll("busy", p)
		seen := map[string]bool{}
		for _, r := range got {
			_, v, _ := cut(r)
			if seen[v] {
				t.Fatalf("%s stored twice", v)
			}
			seen[v] = true
		}
		stored[p] = got
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged; the test proves nothing")
	}
	for v, at := range acked {
		r, ok := stored[at[0]][at[1]]
		if _, gv, _ := cut(r); !ok || gv != v {
			t.Fatalf("acknowledged %s at %v: found %q", v, at, r)
		}
	}
	t.Logf("%d acknowledged records all present once", len(acked))
	e.fsck(false)
}
