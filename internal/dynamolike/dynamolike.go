// Package dynamolike wraps an offsets.Table so that it behaves as DynamoDB
// does under concurrency, where the embedded store and moto (serialized)
// are kinder: they read every multi-item request from one snapshot and
// never refuse a transaction for overlapping another. DynamoDB does both:
//
//   - BatchGetItem and Query are read-committed, not snapshots: each item is
//     consistent on its own, but items are read at different moments, so a
//     transaction landing meanwhile is seen in some items and not others;
//   - a transaction that touches an item another write is still applying
//     is refused with TransactionConflict (offsets.ErrConflict), unapplied;
//   - a write can be applied and still be answered with an error (a
//     timeout, a reset connection), and it can even land after the caller
//     got that error and re-read.
//
// Every decision comes from a seeded generator, so a seed replays the same
// fault decisions (goroutine interleavings still vary); Script and
// BeforeRead let a test force one exact interleaving.
package dynamolike

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// ErrAmbiguous is how a write whose outcome the caller cannot know is
// answered: it may have been applied, or may still be. Like the DynamoDB
// adapter's answer to a timeout, it wraps offsets.ErrUnavailable.
var ErrAmbiguous = fmt.Errorf("%w: dynamolike: request timed out; the write may have been applied", offsets.ErrUnavailable)

// Config selects the behaviours. The zero Config passes everything through.
type Config struct {
	// Seed seeds every random decision.
	Seed uint64
	// TornReads makes a multi-item Get read its items one at a time in a
	// shuffled order (as BatchGetItem does), and a Query re-read each item
	// it found at its own moment, letting other goroutines run in between.
	TornReads bool
	// MaxInFlight is the longest a write holds its items before applying;
	// a write touching an item held by another is refused as
	// offsets.ErrConflict, unapplied (DynamoDB's TransactionConflict).
	MaxInFlight time.Duration
	// AmbiguousRate is the probability that a write is answered with
	// ErrAmbiguous. Half of those are applied before the answer; the other
	// half are still in flight and land up to MaxLate after it.
	AmbiguousRate float64
	// MaxLate bounds how long after its answer a late write lands
	// (default 20 ms).
	MaxLate time.Duration
	// Script, when set, decides the fate of write number n (from 0)
	// instead of the generator.
	Script func(n int64, ops []offsets.Op) Fate
	// BeforeRead, when set, is called before each item of a torn read.
	BeforeRead func(k offsets.Key)
	// Order, when set, gives the order in which a torn Get reads its
	// keys (indexes into keys) instead of a shuffle.
	Order func(keys []offsets.Key) []int
}

// Fate is what happens to one write.
type Fate struct {
	// Hold is how long the write holds its items before applying.
	Hold time.Duration
	// Ambiguous answers the write with ErrAmbiguous.
	Ambiguous bool
	// Late applies an ambiguous write only after answering; it holds its
	// items (refusing overlapping writes) until it lands.
	Late bool
	// Release, when set on a late write, is when it lands.
	Release <-chan struct{}
}

// Table is the wrapper. Safe for concurrent use.
type Table struct {
	next offsets.Table
	cfg  Config

	mu       sync.Mutex
	rnd      *rand.Rand
	writes   int64
	inFlight map[offsets.Key]bool
	late     sync.WaitGroup
}

var _ offsets.Table = (*Table)(nil)

// New wraps next.
func New(next offsets.Table, cfg Config) *Table {
	if cfg.MaxLate <= 0 {
		cfg.MaxLate = 20 * time.Millisecond
	}
	return &Table{next: next, cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), inFlight: map[offsets.Key]bool{}}
}

// Wait blocks until every late write has landed (call it before closing
// the wrapped table).
func (t *Table) Wait() { t.late.Wait() }

func (t *Table) float() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rnd.Float64()
}

func (t *Table) duration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Duration(t.rnd.Int64N(int64(max) + 1))
}

func (t *Table) Get(ctx context.Context, keys ...offsets.Key) ([]offsets.Item, error) {
	if !t.cfg.TornReads || len(keys) < 2 {
		return t.next.Get(ctx, keys...)
	}
	var order []int
	if t.cfg.Order != nil {
		order = t.cfg.Order(keys)
	} else {
		t.mu.Lock()
		order = t.rnd.Perm(len(keys))
		t.mu.Unlock()
	}
	if len(order) != len(keys) {
		return nil, fmt.Errorf("dynamolike: Order gave %d indexes for %d keys", len(order), len(keys))
	}
	out := make([]offsets.Item, len(keys))
	for _, i := range order {
		it, err := t.readOne(ctx, keys[i])
		if err != nil {
			return nil, err
		}
		out[i] = it
	}
	return out, nil
}

// readOne reads one item at its own moment, giving concurrent writes a
// chance to land before and after it.
func (t *Table) readOne(ctx context.Context, k offsets.Key) (offsets.Item, error) {
	if t.cfg.BeforeRead != nil {
		t.cfg.BeforeRead(k)
	}
	runtime.Gosched()
	items, err := t.next.Get(ctx, k)
	if err != nil {
		return offsets.Item{}, err
	}
	runtime.Gosched()
	return items[0], nil
}

func (t *Table) Query(ctx context.Context, pk string, r offsets.Range, limit int) ([]offsets.Item, bool, error) {
	items, more, err := t.next.Query(ctx, pk, r, limit)
	if err != nil || !t.cfg.TornReads || len(items) < 2 {
		return items, more, err
	}
	out := items[:0]
	for _, it := range items {
		fresh, err := t.readOne(ctx, it.Key)
		if err != nil {
			return nil, false, err
		}
		if fresh.Exists() { // deleted meanwhile: a later page would not show it either
			out = append(out, fresh)
		}
	}
	return out, more, nil
}

func (t *Table) fate(ops []offsets.Op) Fate {
	t.mu.Lock()
	n := t.writes
	t.writes++
	t.mu.Unlock()
	if t.cfg.Script != nil {
		return t.cfg.Script(n, ops)
	}
	f := Fate{Hold: t.duration(t.cfg.MaxInFlight)}
	if t.cfg.AmbiguousRate > 0 && t.float() < t.cfg.AmbiguousRate {
		f.Ambiguous = true
		f.Late = t.float() < 0.5
	}
	return f
}

// hold claims keys for a write, or reports a conflict.
func (t *Table) hold(ops []offsets.Op) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, op := range ops {
		if t.inFlight[op.Key] {
			return false
		}
	}
	for _, op := range ops {
		t.inFlight[op.Key] = true
	}
	return true
}

func (t *Table) release(ops []offsets.Op) {
	t.mu.Lock()
	for _, op := range ops {
		delete(t.inFlight, op.Key)
	}
	t.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		runtime.Gosched()
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

func (t *Table) Write(ctx context.Context, ops ...offsets.Op) error {
	if err := offsets.ValidateOps(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f := t.fate(ops)
	if !t.hold(ops) {
		return fmt.Errorf("%w: dynamolike: an item of this write is being written by another request", offsets.ErrConflict)
	}
	if f.Ambiguous && f.Late {
		t.late.Add(1)
		go func() {
			defer t.late.Done()
			defer t.release(ops)
			if f.Release != nil {
				<-f.Release
			} else {
				sleep(context.Background(), f.Hold+t.duration(t.cfg.MaxLate))
			}
			// The request was sent: it lands whatever became of its caller.
			_ = t.next.Write(context.WithoutCancel(ctx), ops...)
		}()
		return ErrAmbiguous
	}
	sleep(ctx, f.Hold)
	err := t.next.Write(context.WithoutCancel(ctx), ops...)
	t.release(ops)
	if f.Ambiguous {
		return ErrAmbiguous
	}
	return err
}
