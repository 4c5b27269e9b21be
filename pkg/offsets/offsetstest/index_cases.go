package offsetstest

import (
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
)

var indexCases = map[string]func(*testing.T, *env){
	"FromOffset": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "idx", 1)
		for range 5 {
			commitN(t, e, tp, 0, 10) // entries [0,9] [10,19] ... [40,49]
		}
		for _, c := range []struct {
			from  int64
			first int64
			n     int
		}{{0, 0, 5}, {9, 0, 5}, {10, 10, 4}, {25, 20, 3}, {49, 40, 1}, {50, 0, 0}, {-3, 0, 5}} {
			entries, _, err := e.store.Index(e.ctx, tp.ID, 0, c.from, 0)
			must(t, err)
			if len(entries) != c.n || (c.n > 0 && entries[0].Base != c.first) {
				t.Fatalf("Index(from %d) = %d entries starting %v, want %d from %d", c.from, len(entries), entries, c.n, c.first)
			}
		}
		entries, more, err := e.store.Index(e.ctx, tp.ID, 0, 15, 2)
		must(t, err)
		if len(entries) != 2 || !more || entries[1].Base != 20 || entries[0].Version != 1 {
			t.Fatalf("limited: %+v more %v", entries, more)
		}
	},
	"ForTimestamp": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "ts", 1)
		for _, ts := range []int64{1000, 5000, 3000, 9000} { // non-monotonic, as Kafka allows
			a := app(0, 4)
			a.MinTs, a.MaxTs = ts-500, ts
			must(t, commitOne(t, e, tp, a).Err)
		}
		for _, c := range []struct {
			ts    int64
			base  int64
			found bool
		}{{0, 0, true}, {1000, 0, true}, {1001, 4, true}, {4000, 4, true}, {5001, 12, true}, {9000, 12, true}, {9001, 0, false}} {
			e2, ok, err := e.store.EntryForTimestamp(e.ctx, tp.ID, 0, 0, c.ts)
			must(t, err)
			if ok != c.found || (ok && e2.Base != c.base) {
				t.Fatalf("EntryForTimestamp(%d) = %+v %v, want base %d %v", c.ts, e2, ok, c.base, c.found)
			}
		}
		// Starting past an entry skips it even if its timestamps qualify.
		e2, ok, err := e.store.EntryForTimestamp(e.ctx, tp.ID, 0, 5, 1000)
		must(t, err)
		if !ok || e2.Base != 4 {
			t.Fatalf("EntryForTimestamp(from 5, ts 1000) = %+v %v, want the entry at 4", e2, ok)
		}
	},
	"EntriesTile": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "tile", 1)
		total := int64(0)
		for i := int64(1); i <= 12; i++ {
			commitN(t, e, tp, 0, i)
			total += i
		}
		checkTiling(t, e, tp, 0, 0, total)
	},
}

// checkTiling asserts the index entries of a partition cover [start, end)
// without gaps or overlaps (invariant 2).
func checkTiling(t *testing.T, e *env, tp offsets.Topic, p int32, start, end int64) []offsets.IndexEntry {
	t.Helper()
	entries, _, err := e.store.Index(e.ctx, tp.ID, p, 0, 0)
	must(t, err)
	next := int64(-1)
	for _, en := range entries {
		if next >= 0 && en.Base != next {
			t.Fatalf("gap or overlap at %d: entry [%d,%d]", next, en.Base, en.Last)
		}
		if next < 0 && (en.Base > start || en.Last < start) {
			t.Fatalf("first entry [%d,%d] does not hold log start %d", en.Base, en.Last, start)
		}
		next = en.Last + 1
	}
	if end > start && next != end {
		t.Fatalf("entries end at %d, log end is %d", next, end)
	}
	return entries
}
