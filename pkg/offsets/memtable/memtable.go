// Package memtable is an in-memory offsets.Table for unit tests. It keeps
// the Table contract (versions, conditions, limits, ordering) but nothing
// survives the process: never the only proof that code works.
package memtable

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/streambed/streambed/pkg/offsets"
)

// Table is an in-memory offsets.Table.
type Table struct {
	mu    sync.RWMutex
	parts map[string]map[string]offsets.Item
}

var _ offsets.Table = (*Table)(nil)

// New returns an empty table.
func New() *Table { return &Table{parts: map[string]map[string]offsets.Item{}} }

func (t *Table) Get(ctx context.Context, keys ...offsets.Key) ([]offsets.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]offsets.Item, len(keys))
	for i, k := range keys {
		out[i] = t.get(k)
	}
	return out, nil
}

func (t *Table) get(k offsets.Key) offsets.Item {
	if it, ok := t.parts[k.PK][k.SK]; ok {
		it.Value = slices.Clone(it.Value)
		return it
	}
	return offsets.Item{Key: k}
}

func (t *Table) Query(ctx context.Context, pk string, r offsets.Range, limit int) ([]offsets.Item, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var sks []string
	for sk := range t.parts[pk] {
		if sk >= r.From && sk <= r.To {
			sks = append(sks, sk)
		}
	}
	slices.SortFunc(sks, strings.Compare)
	more := false
	if limit > 0 && len(sks) > limit {
		sks, more = sks[:limit], true
	}
	out := make([]offsets.Item, len(sks))
	for i, sk := range sks {
		out[i] = t.get(offsets.Key{PK: pk, SK: sk})
	}
	return out, more, nil
}

func (t *Table) Write(ctx context.Context, ops ...offsets.Op) error {
	if err := offsets.ValidateOps(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, op := range ops {
		cur := t.parts[op.Key.PK][op.Key.SK]
		if op.Expect != offsets.AnyVersion && cur.Version != op.Expect {
			return &offsets.ConditionError{Index: i, Key: op.Key}
		}
	}
	for _, op := range ops {
		cur := t.parts[op.Key.PK][op.Key.SK]
		switch op.Kind {
		case offsets.OpPut:
			p := t.parts[op.Key.PK]
			if p == nil {
				p = map[string]offsets.Item{}
				t.parts[op.Key.PK] = p
			}
			p[op.Key.SK] = offsets.Item{Key: op.Key, Version: cur.Version + 1, Value: slices.Clone(op.Value), TTL: op.TTL}
		case offsets.OpDelete:
			delete(t.parts[op.Key.PK], op.Key.SK)
		}
	}
	return nil
}

// String summarizes the table, for debugging tests.
func (t *Table) String() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, p := range t.parts {
		n += len(p)
	}
	return fmt.Sprintf("memtable(%d partition keys, %d items)", len(t.parts), n)
}
