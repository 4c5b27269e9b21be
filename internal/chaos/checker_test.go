package chaos

import (
	"fmt"
	"testing"
)

// stored is one record in a synthetic final log.
type stored struct {
	p   int32
	off int64
	val string
}

// buildLog reads a synthetic final log the way readAll reads partitions.
func buildLog(recs []stored, committed map[int32]int64) *finalLog {
	f := &finalLog{where: map[string][]ack{}, stored: map[ack]string{}, committed: committed}
	byPart := map[int32][]stored{}
	for _, r := range recs {
		byPart[r.p] = append(byPart[r.p], r)
	}
	for _, rs := range byPart {
		next, last := int64(0), map[string]int{}
		for _, r := range rs {
			f.record(r.p, r.off, r.val, &next, last)
		}
	}
	return f
}

// scenario is a history and what storage holds at the end.
type scenario struct {
	h       *history
	recs    []stored
	commits map[int32]int64
	fl      floors
	fired   map[string]int64
	crashes int64
}

// healthy: two producers, two partitions, everything acknowledged, stored
// once where acknowledged, read by the group and committed.
func healthy() *scenario {
	sc := &scenario{h: newHistory(), commits: map[int32]int64{0: 10, 1: 5},
		fl:    floors{acked: 15, crashes: 1, faults: map[string]int64{"storage down": 3}},
		fired: map[string]int64{"storage down": 7}, crashes: 2}
	add := func(prod string, p int32, n int) {
		for i := range n {
			val := fmt.Sprintf("%s-%06d", prod, i)
			sc.h.send(val)
			sc.h.ack(val, ack{p, int64(i)})
			sc.h.observed[ack{p, int64(i)}] = val
			sc.recs = append(sc.recs, stored{p, int64(i), val})
		}
	}
	add("p1", 0, 10)
	add("p2", 1, 5)
	return sc
}

func (sc *scenario) judge() verdict {
	v := sc.h.judge(buildLog(sc.recs, sc.commits), sc.fl, sc.fired, sc.crashes)
	v.fsck = "clean"
	return v
}

// TestCheckerCatchesBrokenHistories feeds the checker histories that are
// each broken in one way: every one must fail, and the healthy one pass.
// A checker that passes everything proves nothing.
func TestCheckerCatchesBrokenHistories(t *testing.T) {
	if v := healthy().judge(); !v.ok() {
		t.Fatalf("the healthy history fails: %s %v", v, v.problems)
	}
	mutations := []struct {
		name   string
		mutate func(*scenario)
	}{
		{"an acknowledged record is missing", func(sc *scenario) { sc.recs = sc.recs[:len(sc.recs)-1] }},
		{"an acknowledged record is stored elsewhere", func(sc *scenario) {
			sc.recs[2].val, sc.recs[3].val = sc.recs[3].val, sc.recs[2].val
			sc.h.observed[ack{0, 2}], sc.h.observed[ack{0, 3}] = sc.recs[2].val, sc.recs[3].val
		}},
		{"a record is stored twice", func(sc *scenario) { sc.recs = append(sc.recs, stored{1, 5, "p2-000000"}) }},
		{"a gap in the offsets", func(sc *scenario) { sc.recs[len(sc.recs)-1].off++ }},
		{"a gap before the first record", func(sc *scenario) {
			for i := range sc.recs {
				if sc.recs[i].p == 1 {
					sc.recs[i].off++
				}
			}
		}},
		{"a record a consumer read has vanished", func(sc *scenario) { sc.h.observed[ack{0, 4}] = "p9-000001" }},
		{"a committed offset moved back", func(sc *scenario) {
			sc.h.commit("t", 0, 8)
			sc.h.commit("t", 0, 6)
		}},
		{"a record no producer sent", func(sc *scenario) { sc.recs = append(sc.recs, stored{1, 5, "x1-000000"}) }},
		{"a side_effect none failure was stored", func(sc *scenario) { sc.h.failNone("p1-000003") }},
		{"the group skipped committed records", func(sc *scenario) { delete(sc.h.observed, ack{0, 3}) }},
		{"too few records acknowledged", func(sc *scenario) { sc.fl.acked = 1000 }},
		{"a broker that refuses every write", func(sc *scenario) {
			sc.h.acked, sc.recs, sc.h.observed, sc.commits = map[string]ack{}, nil, map[ack]string{}, nil
		}},
		{"no process crashed", func(sc *scenario) { sc.crashes = 0 }},
		{"a phase fired no fault", func(sc *scenario) { sc.fired["storage down"] = 0 }},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			sc := healthy()
			m.mutate(sc)
			if v := sc.judge(); v.ok() {
				t.Fatalf("the checker passed a broken history: %s", v)
			}
		})
	}
}
