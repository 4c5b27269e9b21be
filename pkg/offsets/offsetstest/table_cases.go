package offsetstest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
)

var tableCases = map[string]func(*testing.T, *env){
	"VersionsAndConditions": func(t *testing.T, e *env) {
		k := offsets.Key{PK: "p", SK: "a"}
		items, err := e.table.Get(e.ctx, k)
		if err != nil || len(items) != 1 || items[0].Exists() || items[0].Key != k {
			t.Fatalf("Get missing = %+v, %v", items, err)
		}
		must(t, e.table.Write(e.ctx, offsets.Put(k, 0, []byte("one"))))
		wantCondition(t, e.table.Write(e.ctx, offsets.Put(k, 0, []byte("again"))), 0)
		wantCondition(t, e.table.Write(e.ctx, offsets.Put(k, 2, []byte("skip"))), 0)
		must(t, e.table.Write(e.ctx, offsets.Put(k, 1, []byte("two"))))
		it := get(t, e, k)
		if it.Version != 2 || string(it.Value) != "two" {
			t.Fatalf("after two puts: %+v", it)
		}
		wantCondition(t, e.table.Write(e.ctx, offsets.Delete(k, 1)), 0)
		must(t, e.table.Write(e.ctx, offsets.Delete(k, 2)))
		if it := get(t, e, k); it.Exists() {
			t.Fatalf("deleted item still there: %+v", it)
		}
		// Unconditional ops.
		must(t, e.table.Write(e.ctx, offsets.Delete(k, offsets.AnyVersion)))
		must(t, e.table.Write(e.ctx, offsets.Put(k, offsets.AnyVersion, []byte("blind"))))
		must(t, e.table.Write(e.ctx, offsets.Put(k, offsets.AnyVersion, []byte("blind2"))))
		if it := get(t, e, k); it.Version != 2 || string(it.Value) != "blind2" {
			t.Fatalf("blind puts: %+v", it)
		}
	},
	"AllOrNothing": func(t *testing.T, e *env) {
		a, b, c := offsets.Key{PK: "x", SK: "a"}, offsets.Key{PK: "x", SK: "b"}, offsets.Key{PK: "y", SK: "c"}
		must(t, e.table.Write(e.ctx, offsets.Put(c, 0, []byte("c"))))
		// The third op fails: nothing of the write applies.
		err := e.table.Write(e.ctx, offsets.Put(a, 0, []byte("a")), offsets.Put(b, 0, []byte("b")), offsets.Check(c, 7))
		wantCondition(t, err, 2)
		for _, k := range []offsets.Key{a, b} {
			if it := get(t, e, k); it.Exists() {
				t.Fatalf("%s written by a failed transaction", k)
			}
		}
		must(t, e.table.Write(e.ctx, offsets.Put(a, 0, []byte("a")), offsets.Put(b, 0, []byte("b")), offsets.Check(c, 1), offsets.Delete(offsets.Key{PK: "z", SK: "none"}, 0)))
		if get(t, e, a).Version != 1 || get(t, e, b).Version != 1 || get(t, e, c).Version != 1 {
			t.Fatal("transaction did not apply every op")
		}
	},
	"GetManyInOrder": func(t *testing.T, e *env) {
		var keys []offsets.Key
		for i := range 30 {
			k := offsets.Key{PK: fmt.Sprintf("g%d", i%4), SK: fmt.Sprintf("s%02d", i)}
			keys = append(keys, k)
			if i%3 != 0 {
				must(t, e.table.Write(e.ctx, offsets.Put(k, 0, []byte(k.SK))))
			}
		}
		keys = append(keys, keys[1]) // a repeated key
		items, err := e.table.Get(e.ctx, keys...)
		must(t, err)
		for i, it := range items {
			if it.Key != keys[i] || it.Exists() != (i%3 != 0 || i == 30) || (it.Exists() && string(it.Value) != keys[i].SK) {
				t.Fatalf("item %d = %+v for key %s", i, it, keys[i])
			}
		}
	},
	"QueryRangesAndLimits": func(t *testing.T, e *env) {
		for i := range 25 {
			must(t, e.table.Write(e.ctx, offsets.Put(offsets.Key{PK: "q", SK: fmt.Sprintf("seg#%03d", i)}, 0, []byte{byte(i)})))
		}
		must(t, e.table.Write(e.ctx, offsets.Put(offsets.Key{PK: "q", SK: "head"}, 0, []byte("h"))))
		must(t, e.table.Write(e.ctx, offsets.Put(offsets.Key{PK: "q2", SK: "seg#000"}, 0, []byte("other"))))
		items, more, err := e.table.Query(e.ctx, "q", offsets.Prefix("seg#"), 0)
		must(t, err)
		if len(items) != 25 || more || items[0].SK != "seg#000" || items[24].SK != "seg#024" {
			t.Fatalf("prefix query: %d items, more %v", len(items), more)
		}
		items, more, err = e.table.Query(e.ctx, "q", offsets.Range{From: "seg#010", To: "seg#014"}, 0)
		must(t, err)
		if len(items) != 5 || more || items[0].SK != "seg#010" || items[4].SK != "seg#014" {
			t.Fatalf("inclusive range: %d items %v", len(items), more)
		}
		items, more, err = e.table.Query(e.ctx, "q", offsets.Prefix("seg#"), 7)
		must(t, err)
		if len(items) != 7 || !more || items[6].SK != "seg#006" {
			t.Fatalf("limited query: %d items, more %v", len(items), more)
		}
		items, _, err = e.table.Query(e.ctx, "q", offsets.Range{From: "", To: "z"}, 0)
		must(t, err)
		if len(items) != 26 {
			t.Fatalf("open-start range: %d items", len(items))
		}
		items, more, err = e.table.Query(e.ctx, "nothing", offsets.Prefix(""), 10)
		if err != nil || len(items) != 0 || more {
			t.Fatalf("empty partition: %v %v %v", items, more, err)
		}
	},
	"TTLStored": func(t *testing.T, e *env) {
		k := offsets.Key{PK: "t", SK: "ttl"}
		op := offsets.Put(k, 0, []byte("v"))
		op.TTL = 4102444800
		must(t, e.table.Write(e.ctx, op))
		if it := get(t, e, k); it.TTL != 4102444800 {
			t.Fatalf("TTL = %d", it.TTL)
		}
	},
	"RejectsBadWrites": func(t *testing.T, e *env) {
		k := offsets.Key{PK: "r", SK: "k"}
		ops := make([]offsets.Op, offsets.MaxWriteOps+1)
		for i := range ops {
			ops[i] = offsets.Put(offsets.Key{PK: "r", SK: fmt.Sprint(i)}, 0, []byte("x"))
		}
		bad := [][]offsets.Op{
			nil,
			ops,
			{offsets.Put(k, 0, []byte("a")), offsets.Put(k, 0, []byte("b"))},
			{offsets.Put(k, 0, make([]byte, offsets.MaxValueSize+1))},
			{offsets.Check(k, offsets.AnyVersion)},
			{offsets.Put(offsets.Key{PK: "", SK: "x"}, 0, nil)},
		}
		for i, b := range bad {
			if err := e.table.Write(e.ctx, b...); err == nil || errors.Is(err, offsets.ErrConditionFailed) {
				t.Errorf("bad write %d: err = %v, want a validation error", i, err)
			}
		}
		items, _, _ := e.table.Query(e.ctx, "r", offsets.Prefix(""), 0)
		if len(items) != 0 {
			t.Fatalf("rejected writes left %d items", len(items))
		}
		// Exactly the limit is fine.
		must(t, e.table.Write(e.ctx, ops[:offsets.MaxWriteOps]...))
	},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCondition(t *testing.T, err error, index int) {
	t.Helper()
	var ce *offsets.ConditionError
	if !errors.As(err, &ce) || !errors.Is(err, offsets.ErrConditionFailed) {
		t.Fatalf("err = %v, want a ConditionError", err)
	}
	if ce.Index != index {
		t.Fatalf("condition failed on op %d, want %d", ce.Index, index)
	}
}

func get(t *testing.T, e *env, k offsets.Key) offsets.Item {
	t.Helper()
	items, err := e.table.Get(e.ctx, k)
	must(t, err)
	return items[0]
}
