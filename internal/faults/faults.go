// Package faults wraps Streambed's two storage ports — the object store
// (segments.Bucket) and the metadata table (offsets.Table) — to count
// every call and to inject failures: errors before an operation, errors
// after it was applied (a response lost after the commit), latency, an
// outage, and a crash that kills one "process" for good at a chosen step.
//
// The consistency harness uses the injection; `streambed bench` uses the
// counters to report storage requests per GB.
package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInjected marks every failure this package makes up.
var ErrInjected = errors.New("injected fault")

// ErrLost is returned by a write that was applied but whose response was
// lost: its outcome is unknown to the caller.
var ErrLost = fmt.Errorf("%w: applied, response lost", ErrInjected)

// ErrCrashed is returned by every call of a crashed injector: the process
// it stands for is dead, so nothing it does reaches storage any more.
var ErrCrashed = fmt.Errorf("%w: process crashed", ErrInjected)

// Plan is what an Injector does to the calls it sees. The zero Plan
// injects nothing.
type Plan struct {
	Name string
	// ErrRate is the probability that a call fails before it is applied.
	ErrRate float64
	// LostRate is the probability that a write is applied but reports a
	// failure (its response was lost).
	LostRate float64
	// Latency is added to every call; Jitter adds up to as much again.
	Latency, Jitter time.Duration
	// Down fails every call before it is applied (an outage).
	Down bool
	// Throttle makes metadata failures before a call look like DynamoDB
	// throttling (offsets.ErrThrottled) rather than an outage.
	Throttle bool
	// ConflictRate is the probability that a metadata write is refused as
	// a transaction conflict (DynamoDB's TransactionConflict) unapplied.
	ConflictRate float64
}

// Life is the life of one process: the injectors of its object store and
// metadata wrappers share it, so a crash after N calls counts the calls of
// both, in the order the process made them — each step of the commit path.
type Life struct {
	mu   sync.Mutex
	left int64 // calls before the crash; -1: never
	dead bool
}

// NewLife returns a process that lives until CrashAfter says otherwise.
func NewLife() *Life { return &Life{left: -1} }

// CrashAfter lets n more calls through; every later call fails with
// ErrCrashed, for good (kill -9: nothing after it reaches storage).
func (l *Life) CrashAfter(n int64) {
	l.mu.Lock()
	l.left = n
	l.mu.Unlock()
}

// Dead reports whether the process crashed.
func (l *Life) Dead() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dead
}

// step reports whether a call may proceed, counting it.
func (l *Life) step() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || l.left == 0 {
		l.dead = true
		return false
	}
	if l.left > 0 {
		l.left--
	}
	return true
}

// Injector decides the fate of each call. Safe for concurrent use.
type Injector struct {
	mu   sync.Mutex
	plan Plan
	rnd  *rand.Rand
	life *Life

	before, after, delayed, conflicts atomic.Int64
}

// NewInjector returns an injector whose random choices follow seed, living
// the life given (nil: its own, which never ends).
func NewInjector(seed uint64, life *Life) *Injector {
	if life == nil {
		life = NewLife()
	}
	return &Injector{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), life: life}
}

// Set replaces the plan.
func (in *Injector) Set(p Plan) {
	in.mu.Lock()
	in.plan = p
	in.mu.Unlock()
}

// conflict decides whether a metadata write is refused as a conflict.
func (in *Injector) conflict() bool {
	if in == nil {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.plan.ConflictRate > 0 && in.rnd.Float64() < in.plan.ConflictRate {
		in.conflicts.Add(1)
		return true
	}
	return false
}

func (in *Injector) throttling() bool {
	if in == nil {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.plan.Throttle
}

// Stats are the faults injected so far.
type Stats struct{ Before, After, Delayed, Conflicts int64 }

// Total is every fault injected.
func (s Stats) Total() int64 { return s.Before + s.After + s.Delayed + s.Conflicts }

// Stats returns the faults injected so far.
func (in *Injector) Stats() Stats {
	return Stats{in.before.Load(), in.after.Load(), in.delayed.Load(), in.conflicts.Load()}
}

// fate is what happens to one call.
type fate struct {
	fail  bool // before applying
	lose  bool // after applying (writes only)
	dead  bool // the process crashed
	delay time.Duration
}

func (in *Injector) decide(write bool) fate {
	if in == nil {
		return fate{}
	}
	if !in.life.step() {
		return fate{fail: true, dead: true}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	p := in.plan
	var f fate
	if p.Latency > 0 || p.Jitter > 0 {
		f.delay = p.Latency
		if p.Jitter > 0 {
			f.delay += time.Duration(in.rnd.Int64N(int64(p.Jitter)))
		}
	}
	switch {
	case p.Down:
		f.fail = true
	case p.ErrRate > 0 && in.rnd.Float64() < p.ErrRate:
		f.fail = true
	case write && p.LostRate > 0 && in.rnd.Float64() < p.LostRate:
		f.lose = true
	}
	return f
}

// run applies fate f around op. what names the call in errors.
func (in *Injector) run(ctx context.Context, write bool, what string, op func() error) error {
	f := in.decide(write)
	if f.delay > 0 {
		in.delayed.Add(1)
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if f.fail {
		in.before.Add(1)
		if f.dead {
			return fmt.Errorf("%s: %w", what, ErrCrashed)
		}
		return fmt.Errorf("%s: %w: unavailable", what, ErrInjected)
	}
	err := op()
	if f.lose && err == nil {
		in.after.Add(1)
		return fmt.Errorf("%s: %w", what, ErrLost)
	}
	return err
}
