package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// readEnv is one partition of 10,000 records of 1 KiB (200 produce
// requests of 50), merged into one segment whose points are pointInterval
// apart; fresh brokers read it through a counting bucket.
type readEnv struct {
	ctx    context.Context
	store  *offsets.Store
	bucket segments.Bucket
	ts     func(off int64) int64
}

const (
	readRecords   = 10_000
	pointInterval = 64 << 10
)

func newReadEnv(t *testing.T, merge bool) *readEnv {
	t.Helper()
	ctx := context.Background()
	store := offsets.New(memtable.New())
	bucket := membucket.New()
	b := New(store, bucket, Config{})
	if _, err := b.CreateTopic(ctx, "r", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UnixMilli() - 2*readRecords*10 // recent: retention keeps it
	e := &readEnv{ctx: ctx, store: store, bucket: bucket, ts: func(off int64) int64 { return start + off*10 }}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < readRecords; i += 50 {
		recs := make([]segments.Record, 50)
		for j := range recs {
			v := make([]byte, 1024)
			for k := range v {
				v[k] = byte(rnd.Uint32())
			}
			recs[j] = segments.Record{Timestamp: e.ts(int64(i + j)), Key: fmt.Appendf(nil, "k%d", i+j), Value: v}
		}
		if _, err := b.ProducePartition(ctx, "r", 0, PartitionProduce{Records: recs, ExpectedOffset: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if merge {
		c := compactor.New(store, bucket, compactor.Config{MergeMinBytes: 1, MaxMergesPerPartition: 100, PointInterval: pointInterval, Budget: time.Hour})
		for {
			st, err := c.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.EntriesMerged == 0 {
				break
			}
		}
		entries, _, err := store.Index(ctx, mustTopic(t, b, "r").ID, 0, 0, 0)
		if err != nil || len(entries) != 1 || len(entries[0].Points) < 100 {
			t.Fatalf("after the merge: %d entries, %v", len(entries), err)
		}
	}
	return e
}

// broker returns a broker with cold caches over a counting bucket.
func (e *readEnv) broker() (*Broker, *faults.Bucket) {
	counted := faults.WrapBucket(e.bucket, nil)
	return New(e.store, counted, Config{}), counted
}

func checkRecords(t *testing.T, e *readEnv, recs []segments.Record, from int64, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("fetch at %d: %d records, want %d", from, len(recs), n)
	}
	for i, r := range recs {
		if r.Offset != from+int64(i) || string(r.Key) != fmt.Sprintf("k%d", r.Offset) || r.Timestamp != e.ts(r.Offset) || len(r.Value) != 1024 {
			t.Fatalf("fetch at %d: record %d is offset %d key %s", from, i, r.Offset, r.Key)
		}
	}
}

// TestSmallFetchesReadLittle: a fetch of 10 records at a random offset of
// a 10 MiB merged segment reads about one stretch between points, not the
// slice; before the merge it reads one L0 slice. Repeating a fetch reads
// nothing.
func TestSmallFetchesReadLittle(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprintf("merged=%v", merged), func(t *testing.T) {
			e := newReadEnv(t, merged)
			rnd := rand.New(rand.NewPCG(3, 4))
			var worst int64
			for range 50 {
				b, counted := e.broker()
				off := rnd.Int64N(readRecords - 10)
				res, err := b.Fetch(e.ctx, FetchRequest{Topic: "r", Partition: 0, Offset: off, MaxRecords: 10})
				if err != nil {
					t.Fatal(err)
				}
				checkRecords(t, e, res.Records, off, 10)
				worst = max(worst, counted.Counts().GetBytes)
				before := counted.Counts()
				again, err := b.Fetch(e.ctx, FetchRequest{Topic: "r", Partition: 0, Offset: off, MaxRecords: 10})
				if err != nil {
					t.Fatal(err)
				}
				checkRecords(t, e, again.Records, off, 10)
				if after := counted.Counts(); after.Get != before.Get {
					t.Fatalf("a repeated fetch read the bucket again (%d reads)", after.Get-before.Get)
				}
			}
			// One L0 slice is a 50-record batch (about 52 KiB); a stretch of
			// the merged segment is at most the interval, plus a batch when
			// the records straddle two stretches.
			limit := int64(pointInterval + 60<<10)
			if !merged {
				limit = 2 * 60 << 10
			}
			if worst > limit {
				t.Fatalf("a 10-record fetch read %d bytes, want at most %d", worst, limit)
			}
			t.Logf("merged=%v: at most %d bytes read per 10-record fetch", merged, worst)
		})
	}
}

// TestLargeFetchFollowsTheBudget: a fetch of 1000 records reads about what
// it returns, in a few ranged reads.
func TestLargeFetchFollowsTheBudget(t *testing.T) {
	e := newReadEnv(t, true)
	b, counted := e.broker()
	res, err := b.Fetch(e.ctx, FetchRequest{Topic: "r", Partition: 0, Offset: 4321, MaxRecords: 1000})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, e, res.Records, 4321, 1000)
	c := counted.Counts()
	returned := int64(1000 * 1024)
	if c.GetBytes > returned+2*pointInterval+drainLimit || c.Get > 4 {
		t.Fatalf("returned about %d bytes, read %d in %d requests", returned, c.GetBytes, c.Get)
	}
	// Reading on from there is served from what was already read, then
	// continues with new ranges.
	res, err = b.Fetch(e.ctx, FetchRequest{Topic: "r", Partition: 0, Offset: res.NextOffset, MaxRecords: 5000})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, e, res.Records, 5321, 4679)
}

// TestTailReadsHitMemory: a consumer of the broker that produced reads
// neither the store's index nor the bucket for what was just appended.
func TestTailReadsHitMemory(t *testing.T) {
	ctx := context.Background()
	table := faults.WrapTable(memtable.New(), nil)
	bucket := faults.WrapBucket(membucket.New(), nil)
	b := New(offsets.New(table), bucket, Config{})
	if _, err := b.CreateTopic(ctx, "tail", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for i := range 20 {
		if _, err := b.ProducePartition(ctx, "tail", 0, PartitionProduce{Records: []segments.Record{{Timestamp: NoTimestamp, Value: fmt.Appendf(nil, "v%d", i)}}, ExpectedOffset: -1}); err != nil {
			t.Fatal(err)
		}
		queries, gets := table.Counts().Query, bucket.Counts().Get
		res, err := b.Fetch(ctx, FetchRequest{Topic: "tail", Partition: 0, Offset: next})
		if err != nil || len(res.Records) != 1 || string(res.Records[0].Value) != fmt.Sprintf("v%d", i) {
			t.Fatalf("tail read %d: %+v %v", i, res.Records, err)
		}
		next = res.NextOffset
		// The first read queries the index; later ones find the entries
		// this broker appended in its cache.
		if i > 0 && (table.Counts().Query != queries || bucket.Counts().Get != gets) {
			t.Fatalf("tail read %d: %d index queries, %d bucket reads", i, table.Counts().Query-queries, bucket.Counts().Get-gets)
		}
	}
}

// TestTimestampLookupUsesPoints: finding the offset of a timestamp reads
// the stretch that holds it, not the segment.
func TestTimestampLookupUsesPoints(t *testing.T) {
	e := newReadEnv(t, true)
	b, counted := e.broker()
	for _, want := range []int64{0, 1, 5000, 9999} {
		off, ts, found, _, err := b.OffsetForTimestamp(e.ctx, "r", 0, e.ts(want)-5)
		if err != nil || !found || off != want || ts != e.ts(want) {
			t.Fatalf("timestamp of %d: offset %d ts %d found %v %v", want, off, ts, found, err)
		}
	}
	if c := counted.Counts(); c.GetBytes > 4*(pointInterval+60<<10) {
		t.Fatalf("4 timestamp lookups read %d bytes", c.GetBytes)
	}
	if _, _, found, _, err := b.OffsetForTimestamp(e.ctx, "r", 0, e.ts(readRecords)); err != nil || found {
		t.Fatalf("a timestamp past the end: found %v, %v", found, err)
	}
}

// TestBadPointsAreCorruption: an index entry whose points do not fall on
// batch starts fails the read as corrupt; it returns nothing made up.
func TestBadPointsAreCorruption(t *testing.T) {
	e := newReadEnv(t, true)
	b, _ := e.broker()
	entries, _, err := e.store.Index(e.ctx, mustTopic(t, b, "r").ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := entries[0]
	bad.Points = append([]offsets.Point(nil), bad.Points...)
	bad.Points[3].Pos += 7
	err = b.readEntry(e.ctx, entryRead{e: bad, from: bad.Base + bad.Points[3].Delta, point: -1,
		need:  func() int64 { return 1 },
		visit: func([]segments.Record) bool { t.Fatal("records decoded from a bad position"); return false },
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read from a bad point: %v", err)
	}
}
