package offsetstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
)

// ack is one acknowledged append.
type ack struct {
	writer   int
	object   string
	seq      int32 // first sequence, idempotent writers only
	base     int64
	last     int64
	resent   bool
	resentOK bool
}

var concurrencyCases = map[string]func(*testing.T, *env){
	// RacingWriters: 8 writers commit objects spanning 1-3 of the same 3
	// partitions at once; half are idempotent producers that sometimes
	// resend a batch (as after a lost response). Then: offsets are dense,
	// every acknowledged append is in the index exactly once at the
	// offsets it was given, nothing unacknowledged is there, each
	// producer's batches are in sequence order, and resends got the
	// original offsets.
	"RacingWriters": func(t *testing.T, e *env) {
		const writers, rounds = 8, 12
		tp := createTopic(t, e, "race", 3)
		var mu sync.Mutex
		acks := map[int32][]ack{}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				idempotent := w%2 == 0
				seq := map[int32]int32{}
				for r := range rounds {
					parts := rng.Perm(3)[:1+rng.IntN(3)]
					obj := fmt.Sprintf("l0/race/w%d-r%d", w, r)
					var apps []offsets.Append
					for _, p := range parts {
						a := app(int32(p), int64(1+rng.IntN(3)))
						if idempotent {
							a.Producer = &offsets.ProducerID{ID: int64(1000 + w), FirstSeq: seq[int32(p)]}
						}
						apps = append(apps, a)
					}
					res, err := commitUntilDone(e, tp, obj, apps)
					if err != nil {
						errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
						return
					}
					resend := idempotent && rng.IntN(3) == 0
					var again []offsets.AppendResult
					if resend {
						// Same batches, same sequences, a new object (a re-upload).
						again, err = commitUntilDone(e, tp, obj+"-resend", apps)
						if err != nil {
							errs <- fmt.Errorf("writer %d round %d resend: %w", w, r, err)
							return
						}
					}
					mu.Lock()
					for i, a := range apps {
						k := ack{writer: w, object: obj, base: res[i].Base, last: res[i].Last}
						if a.Producer != nil {
							k.seq = a.Producer.FirstSeq
							seq[a.Partition] += int32(a.Records)
						}
						if resend {
							k.resent = true
							k.resentOK = again[i].Duplicate && again[i].Base == res[i].Base && again[i].Last == res[i].Last
						}
						acks[a.Partition] = append(acks[a.Partition], k)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for p := range int32(3) {
			end := logEnd(t, e, tp, p)
			entries := checkTiling(t, e, tp, p, 0, end)
			byObject := map[string]offsets.IndexEntry{}
			for _, en := range entries {
				if _, dup := byObject[en.Object]; dup {
					t.Fatalf("partition %d: object %s indexed twice", p, en.Object)
				}
				byObject[en.Object] = en
			}
			var total int64
			perWriter := map[int][]ack{}
			for _, k := range acks[p] {
				en, ok := byObject[k.object]
				if !ok || en.Base != k.base || en.Last != k.last {
					t.Fatalf("partition %d: ack %+v not in the index at its offsets (found %+v)", p, k, en)
				}
				if k.resent && !k.resentOK {
					t.Fatalf("partition %d: resend of %+v did not return the original offsets", p, k)
				}
				delete(byObject, k.object)
				total += k.last - k.base + 1
				perWriter[k.writer] = append(perWriter[k.writer], k)
			}
			if len(byObject) != 0 {
				t.Fatalf("partition %d: unacknowledged entries %v", p, byObject)
			}
			if total != end {
				t.Fatalf("partition %d: acks cover %d offsets, log end is %d", p, total, end)
			}
			for w, ks := range perWriter {
				if w%2 != 0 {
					continue
				}
				if !slices.IsSortedFunc(ks, func(a, b ack) int { return int(a.seq - b.seq) }) {
					t.Fatalf("partition %d writer %d: acks out of sequence order", p, w)
				}
				for i := 1; i < len(ks); i++ {
					if ks[i].base <= ks[i-1].last {
						t.Fatalf("partition %d writer %d: sequence %d at %d before sequence %d at %d", p, w, ks[i].seq, ks[i].base, ks[i-1].seq, ks[i-1].base)
					}
				}
			}
		}
	},
	"UniqueProducerIDs": func(t *testing.T, e *env) {
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each goroutine a process of its own, leasing its own blocks.
				store := offsets.New(e.table)
				for range 4 {
					id, err := store.AllocateProducerID(e.ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[id] {
						t.Errorf("producer id %d handed out twice", id)
					}
					seen[id] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 32 {
			t.Fatalf("%d ids", len(seen))
		}
	},
}

// commitUntilDone commits, retrying appends that failed only because the
// store was unavailable (retries exhausted under contention), as a
// producer would. Other per-append errors fail the test.
func commitUntilDone(e *env, tp offsets.Topic, obj string, apps []offsets.Append) ([]offsets.AppendResult, error) {
	out := make([]offsets.AppendResult, len(apps))
	todo := slices.Clone(apps)
	idx := make([]int, len(apps))
	for i := range idx {
		idx[i] = i
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: obj, Size: 100}, todo)
		if err != nil {
			return nil, err
		}
		var nextTodo []offsets.Append
		var nextIdx []int
		for i, r := range res {
			switch {
			case r.Err == nil:
				out[idx[i]] = r
			case errors.Is(r.Err, offsets.ErrUnavailable) && attempt < 10:
				nextTodo = append(nextTodo, todo[i])
				nextIdx = append(nextIdx, idx[i])
			default:
				return nil, r.Err
			}
		}
		todo, idx = nextTodo, nextIdx
	}
	return out, nil
}
