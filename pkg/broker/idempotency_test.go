package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

func values(rs ...string) []ProduceRecord {
	out := make([]ProduceRecord, len(rs))
	for i, v := range rs {
		out[i] = rec("", v)
	}
	return out
}

func (f *fixture) stored(t *testing.T, topic string) []string {
	t.Helper()
	st, err := f.b.Partitions(f.ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range st {
		if s.LogEnd == 0 {
			continue
		}
		res, err := f.b.Fetch(f.ctx, FetchRequest{Topic: topic, Partition: s.Partition, Offset: 0})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			out = append(out, string(r.Value))
		}
	}
	return out
}

// TestIdempotencyKeyScopes: the case — client A sends {alice} with
// key order-123, client B {bob, carol} with the same key. As different
// principals both are stored; as one principal B is refused with nothing
// stored. A key is per topic too.
func TestIdempotencyKeyScopes(t *testing.T) {
	for _, c := range []struct {
		name       string
		principalB string
		topicB     string
		wantErr    error
	}{
		{"other principal", "bob", "orders", nil},
		{"same principal", "alice", "orders", offsets.ErrIdempotencyKeyReused},
		{"other topic", "alice", "invoices", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.topic(t, "orders", 1)
			f.topic(t, "invoices", 1)
			a, err := f.b.Produce(f.ctx, "orders", values("alice"), ProduceOptions{IdempotencyKey: "order-123", Principal: "alice"})
			if err != nil || a[0].Err != nil {
				t.Fatal(err, a)
			}
			b, err := f.b.Produce(f.ctx, c.topicB, values("bob", "carol"), ProduceOptions{IdempotencyKey: "order-123", Principal: c.principalB})
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("reuse: %v %+v", err, b)
				}
				if got := f.stored(t, "orders"); fmt.Sprint(got) != "[alice]" {
					t.Fatalf("stored %v after a refused reuse", got)
				}
				return
			}
			if err != nil || b[0].Err != nil || b[1].Err != nil {
				t.Fatalf("%v %+v", err, b)
			}
			got := f.stored(t, c.topicB)
			if !strings.Contains(fmt.Sprint(got), "bob") || !strings.Contains(fmt.Sprint(got), "carol") {
				t.Fatalf("B's records are not stored: %v", got)
			}
		})
	}
}

// TestIdempotencyKeyLeavesOneShortLivedItem: a request with a key leaves
// one item, expiring within a day, and no producer state.
func TestIdempotencyKeyLeavesOneShortLivedItem(t *testing.T) {
	table := memtable.New()
	clock := time.UnixMilli(1_700_000_000_000)
	store := offsets.New(table, offsets.WithClock(func() time.Time { return clock }))
	b := New(store, membucket.New(), Config{Now: func() time.Time { return clock }})
	ctx := context.Background()
	tp, err := b.CreateTopic(ctx, "t", 4, offsets.DefaultTopicConfig())
	if err != nil {
		t.Fatal(err)
	}
	recs := []ProduceRecord{rec("k1", "a"), rec("k2", "b"), rec("k3", "c"), rec("k4", "d")}
	if _, err := b.Produce(ctx, "t", recs, ProduceOptions{IdempotencyKey: "req"}); err != nil {
		t.Fatal(err)
	}
	for p := range tp.Partitions {
		items, _, err := table.Query(ctx, fmt.Sprintf("p#%s#%d", tp.ID, p), offsets.Prefix("pid#"), 0)
		if err != nil || len(items) != 0 {
			t.Fatalf("partition %d has producer items %v (%v)", p, items, err)
		}
	}
	ref, err := store.IdempotencyRef(ctx, "", tp.ID, "req")
	if err != nil {
		t.Fatal(err)
	}
	rec, found, err := store.LookupIdempotency(ctx, ref)
	if err != nil || !found || len(rec.Done) == 0 {
		t.Fatalf("record %+v %v %v", rec, found, err)
	}
	clock = clock.Add(25 * time.Hour)
	if _, found, _ := store.LookupIdempotency(ctx, ref); found {
		t.Fatal("the key outlived its 24 hours")
	}
}

// failNth fails the nth metadata write (from 1) that carries an index
// entry, refusing it unapplied.
type failNth struct {
	offsets.Table
	n, seen atomic.Int64
}

func (f *failNth) Write(ctx context.Context, ops ...offsets.Op) error {
	for _, op := range ops {
		if strings.HasPrefix(op.Key.SK, "seg#") {
			if f.seen.Add(1) == f.n.Load() {
				return fmt.Errorf("%w: injected", offsets.ErrRefused)
			}
			break
		}
	}
	return f.Table.Write(ctx, ops...)
}

// TestIdempotencyKeyFinishesAnInterruptedRequest: a request spread over 60
// partitions commits in two transactions; the second fails. The retry
// answers the first transaction's partitions with their offsets and
// commits only the rest: 60 records in all.
func TestIdempotencyKeyFinishesAnInterruptedRequest(t *testing.T) {
	table := &failNth{Table: memtable.New()}
	b := New(offsets.New(table), membucket.New(), Config{})
	ctx := context.Background()
	if _, err := b.CreateTopic(ctx, "wide", 60, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var recs []ProduceRecord
	for p := range int32(60) {
		r := rec("", fmt.Sprint(p))
		r.Partition = p
		recs = append(recs, r)
	}
	table.n.Store(2)
	first, err := b.Produce(ctx, "wide", recs, ProduceOptions{IdempotencyKey: "wide-1"})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range first {
		if r.Err != nil {
			failed++
		}
	}
	if failed == 0 || failed == 60 {
		t.Fatalf("%d of 60 records failed; the test needs a partial failure", failed)
	}
	again, err := b.Produce(ctx, "wide", recs, ProduceOptions{IdempotencyKey: "wide-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Err != nil || (first[i].Err == nil && r.Offset != first[i].Offset) {
			t.Fatalf("record %d: retry %+v, first %+v", i, r, first[i])
		}
	}
	st, _ := b.Partitions(ctx, "wide")
	for _, s := range st {
		if s.LogEnd != 1 {
			t.Fatalf("partition %d holds %d records", s.Partition, s.LogEnd)
		}
	}
}

// TestIdempotencyKeyConcurrentReuse: requests racing with one key agree:
// the same content gets the same offsets, other content is refused.
func TestIdempotencyKeyConcurrentReuse(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "race", 2)
	var wg sync.WaitGroup
	results := make([][]RecordResult, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := values("same")
			if i%2 == 1 {
				body = values("other")
			}
			results[i], errs[i] = f.b.Produce(f.ctx, "race", body, ProduceOptions{IdempotencyKey: "k"})
		}()
	}
	wg.Wait()
	var winner string
	offsetsSeen := map[string]bool{}
	for i := range 8 {
		content := "same"
		if i%2 == 1 {
			content = "other"
		}
		switch {
		case errors.Is(errs[i], offsets.ErrIdempotencyKeyReused):
			continue
		case errs[i] == nil && errors.Is(results[i][0].Err, offsets.ErrIdempotencyKeyReused):
			continue // found out at commit time
		case errs[i] != nil || results[i][0].Err != nil:
			t.Fatalf("request %d: %v %+v", i, errs[i], results[i])
		}
		if winner != "" && winner != content {
			t.Fatalf("both contents were accepted under one key")
		}
		winner = content
		offsetsSeen[fmt.Sprint(results[i][0].Partition, results[i][0].Offset)] = true
	}
	if len(offsetsSeen) != 1 || len(f.stored(t, "race")) != 1 {
		t.Fatalf("offsets %v, stored %v", offsetsSeen, f.stored(t, "race"))
	}
}
