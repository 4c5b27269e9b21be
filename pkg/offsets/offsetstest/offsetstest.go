// Package offsetstest is the acceptance suite every offsets.Table adapter
// must pass. It checks the Table contract directly, then runs the whole
// Store on the adapter: topics, commits, every kind of writer fencing,
// the index, compaction support, groups, and a concurrency test of racing
// writers that can fail.
package offsetstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// Factory returns a new, empty table for each call.
type Factory func(t *testing.T) offsets.Table

// Run runs the acceptance suite.
func Run(t *testing.T, newTable Factory) {
	groups := []struct {
		name  string
		cases map[string]func(*testing.T, *env)
	}{
		{"Table", tableCases},
		{"Topics", topicCases},
		{"Produce", produceCases},
		{"Fencing", fencingCases},
		{"Index", indexCases},
		{"Compaction", compactionCases},
		{"Groups", groupCases},
		{"Nodes", nodeCases},
		{"Concurrency", concurrencyCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for name, fn := range g.cases {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fn(t, newEnv(t, newTable(t)))
				})
			}
		})
	}
}

// env is one test's table, a Store on it with a controllable clock, and a
// context.
type env struct {
	table offsets.Table
	store *offsets.Store
	clock *Clock
	ctx   context.Context
}

func newEnv(t *testing.T, table offsets.Table) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	clock := NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return &env{
		table: table,
		store: offsets.New(table, offsets.WithClock(clock.Now), offsets.WithGCGrace(time.Hour)),
		clock: clock,
		ctx:   ctx,
	}
}

// Clock is a manually advanced clock that starts at a fixed time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
