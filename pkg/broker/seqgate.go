package broker

import (
	"context"
	"sync"
	"time"
)

// seqGate orders an idempotent producer's pipelined requests within this
// process. A producer keeps several requests in flight; when a later batch
// of a partition overtakes an earlier one on the way in, committing it
// first would fail with a sequence gap after its object was uploaded — a
// wasted PUT and a retry. So a batch waits, briefly, while an earlier
// batch of the same producer and partition is in progress here. Ordering
// across processes (Lambda instances) still rests on the sequence checks
// of the commit; this only saves work.
type seqGate struct {
	mu    sync.Mutex                // guards all below; next grows by one entry per producer partition (bounded by producer state TTL in practice)
	busy  map[seqKey]map[int32]bool // first sequences in progress
	next  map[seqKey]int32          // the sequence after the last batch committed here
	wake  chan struct{}
	limit time.Duration
}

type seqKey struct {
	topicID   string
	partition int32
	producer  int64
	epoch     int16
}

func newSeqGate(limit time.Duration) *seqGate {
	return &seqGate{busy: map[seqKey]map[int32]bool{}, next: map[seqKey]int32{}, wake: make(chan struct{}), limit: limit}
}

// enter waits (up to the limit) until, for each key, no batch with a lower
// first sequence is in progress and no gap is known below this one (the
// earlier batch may be on its way back from a client retry), then marks
// the batches as in progress. done marks them finished; committed gives,
// per key, the sequence after the batch when it was committed (-1: not).
func (g *seqGate) enter(ctx context.Context, keys []seqKey, firsts []int32) (done func(committed []int32)) {
	deadline := time.Now().Add(g.limit)
	g.mu.Lock()
	for {
		blocked := false
		for i, k := range keys {
			for s := range g.busy[k] {
				if s < firsts[i] {
					blocked = true
				}
			}
			if n, ok := g.next[k]; ok && n < firsts[i] {
				blocked = true
			}
		}
		if !blocked || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		ch := g.wake
		g.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		g.mu.Lock()
	}
	for i, k := range keys {
		if g.busy[k] == nil {
			g.busy[k] = map[int32]bool{}
		}
		g.busy[k][firsts[i]] = true
	}
	g.mu.Unlock()
	return func(committed []int32) {
		g.mu.Lock()
		for i, k := range keys {
			delete(g.busy[k], firsts[i])
			if len(g.busy[k]) == 0 {
				delete(g.busy, k)
			}
			if committed != nil && committed[i] > g.next[k] { // duplicates never move it back
				g.next[k] = committed[i]
			}
		}
		close(g.wake)
		g.wake = make(chan struct{})
		g.mu.Unlock()
	}
}
