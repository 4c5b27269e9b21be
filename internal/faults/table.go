package faults

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/streambed/streambed/pkg/offsets"
)

// TableCounts are the metadata calls made. Items and WriteOps are what
// DynamoDB bills: read units per item read, write units per item written
// (twice for transactions).
type TableCounts struct {
	Get, Query, Write     int64
	ItemsRead, WriteOps   int64
	TransactionalWrites   int64 // Write calls with more than one op
	TransactionalOps      int64 // ops in those calls (billed twice)
	FailedConditionWrites int64
}

// Table is an offsets.Table that counts calls and injects faults.
// Injected failures are offsets.ErrUnavailable, or offsets.ErrThrottled
// when the plan says Throttle, so the store reacts as to the real thing.
type Table struct {
	next offsets.Table
	in   *Injector

	get, query, write, items, ops, txn, txnOps, cond atomic.Int64
}

var _ offsets.Table = (*Table)(nil)

// WrapTable wraps t; in may be nil (count only).
func WrapTable(t offsets.Table, in *Injector) *Table { return &Table{next: t, in: in} }

// Counts returns the calls so far.
func (t *Table) Counts() TableCounts {
	return TableCounts{Get: t.get.Load(), Query: t.query.Load(), Write: t.write.Load(), ItemsRead: t.items.Load(),
		WriteOps: t.ops.Load(), TransactionalWrites: t.txn.Load(), TransactionalOps: t.txnOps.Load(), FailedConditionWrites: t.cond.Load()}
}

func (t *Table) classify(err error) error {
	if err == nil || !isInjected(err) || errors.Is(err, offsets.ErrConflict) {
		return err
	}
	if t.in.throttling() && !errors.Is(err, ErrLost) && !errors.Is(err, ErrCrashed) {
		return fmt.Errorf("%w (%w)", offsets.ErrThrottled, err)
	}
	return fmt.Errorf("%w (%w)", offsets.ErrUnavailable, err)
}

func (t *Table) Get(ctx context.Context, keys ...offsets.Key) ([]offsets.Item, error) {
	t.get.Add(1)
	var out []offsets.Item
	err := t.in.run(ctx, false, "get", func() error {
		var err error
		out, err = t.next.Get(ctx, keys...)
		t.items.Add(int64(len(keys)))
		return err
	})
	return out, t.classify(err)
}

func (t *Table) Query(ctx context.Context, pk string, r offsets.Range, limit int) ([]offsets.Item, bool, error) {
	t.query.Add(1)
	var out []offsets.Item
	var more bool
	err := t.in.run(ctx, false, "query "+pk, func() error {
		var err error
		out, more, err = t.next.Query(ctx, pk, r, limit)
		t.items.Add(int64(max(len(out), 1)))
		return err
	})
	return out, more, t.classify(err)
}

// Write: a write whose response is lost reports offsets.ErrUnavailable
// after it was applied, as a timed-out DynamoDB call would.
func (t *Table) Write(ctx context.Context, ops ...offsets.Op) error {
	t.write.Add(1)
	t.ops.Add(int64(len(ops)))
	if len(ops) > 1 {
		t.txn.Add(1)
		t.txnOps.Add(int64(len(ops)))
	}
	err := t.in.run(ctx, true, "write", func() error {
		if t.in.conflict() {
			return fmt.Errorf("%w (%w: injected)", offsets.ErrConflict, ErrInjected)
		}
		err := t.next.Write(ctx, ops...)
		if err != nil && isCondition(err) {
			t.cond.Add(1)
		}
		return err
	})
	return t.classify(err)
}
