package broker

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestSeqGateOrdersOvertakingBatches(t *testing.T) {
	g := newSeqGate(2 * time.Second)
	k := []seqKey{{"t", 0, 7, 0}}
	ctx := context.Background()
	first := g.enter(ctx, k, []int32{0}) // batch 0 in progress
	var order []int32
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // batch 10 overtook it: it must wait
		defer wg.Done()
		done := g.enter(ctx, k, []int32{10})
		mu.Lock()
		order = append(order, 10)
		mu.Unlock()
		done([]int32{20})
	}()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	order = append(order, 0)
	mu.Unlock()
	first([]int32{10})
	wg.Wait()
	if len(order) != 2 || order[0] != 0 {
		t.Fatalf("order %v", order)
	}
	// A known gap (batch 20 retried by its client) holds batch 30 back,
	// but only up to the limit.
	g2 := newSeqGate(100 * time.Millisecond)
	g2.next[k[0]] = 20
	start := time.Now()
	g2.enter(ctx, k, []int32{30})(nil)
	if waited := time.Since(start); waited < 90*time.Millisecond {
		t.Fatalf("did not wait for the gap: %s", waited)
	}
	start = time.Now()
	g2.enter(ctx, k, []int32{20})([]int32{30}) // no gap: no wait
	if waited := time.Since(start); waited > 50*time.Millisecond {
		t.Fatalf("waited %s without a gap", waited)
	}
}
