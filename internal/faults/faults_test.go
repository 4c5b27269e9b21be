package faults_test

import (
	"context"
	"errors"
	"testing"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

func TestCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	life := faults.NewLife()
	b := faults.WrapBucket(membucket.New(), faults.NewInjector(1, life))
	tb := faults.WrapTable(memtable.New(), faults.NewInjector(2, life))
	life.CrashAfter(2) // a put and a write get through; the third call is the crash
	if err := b.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tb.Write(ctx, offsets.Put(offsets.Key{PK: "p", SK: "s"}, 0, []byte("v"))); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "b", []byte("x")); !errors.Is(err, faults.ErrCrashed) {
		t.Fatalf("third call: %v, want crashed", err)
	}
	if _, err := tb.Get(ctx, offsets.Key{PK: "p", SK: "s"}); !errors.Is(err, offsets.ErrUnavailable) || !errors.Is(err, faults.ErrCrashed) {
		t.Fatalf("after the crash: %v", err)
	}
	if !life.Dead() {
		t.Fatal("not dead")
	}
	if c := b.Counts(); c.Put != 2 || c.PutBytes != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestLostWriteIsApplied(t *testing.T) {
	ctx := context.Background()
	in := faults.NewInjector(3, nil)
	in.Set(faults.Plan{LostRate: 1})
	inner := membucket.New()
	b := faults.WrapBucket(inner, in)
	if err := b.Put(ctx, "k", []byte("v")); !errors.Is(err, faults.ErrLost) {
		t.Fatalf("put: %v", err)
	}
	if _, err := inner.Stat(ctx, "k"); err != nil {
		t.Fatalf("the lost write was not applied: %v", err)
	}
	tb := faults.WrapTable(memtable.New(), in)
	in.Set(faults.Plan{ErrRate: 1, Throttle: true})
	if _, err := tb.Get(ctx, offsets.Key{PK: "a", SK: "b"}); !errors.Is(err, offsets.ErrThrottled) {
		t.Fatalf("throttled get: %v", err)
	}
	in.Set(faults.Plan{Down: true})
	if _, err := b.GetRange(ctx, "k", 0, 1); !errors.Is(err, faults.ErrInjected) || errors.Is(err, segments.ErrNotFound) {
		t.Fatalf("get while down: %v", err)
	}
}

func TestSeededPlansRepeat(t *testing.T) {
	run := func() []bool {
		in := faults.NewInjector(42, nil)
		in.Set(faults.Plan{ErrRate: 0.5})
		b := faults.WrapBucket(membucket.New(), in)
		var out []bool
		for range 64 {
			_, err := b.Stat(context.Background(), "x")
			out = append(out, errors.Is(err, faults.ErrInjected))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d differs between runs with the same seed", i)
		}
	}
}

func TestConflictsAreNotApplied(t *testing.T) {
	ctx := context.Background()
	in := faults.NewInjector(5, nil)
	in.Set(faults.Plan{ConflictRate: 1})
	inner := memtable.New()
	tb := faults.WrapTable(inner, in)
	k := offsets.Key{PK: "p", SK: "s"}
	if err := tb.Write(ctx, offsets.Put(k, 0, []byte("v"))); !errors.Is(err, offsets.ErrConflict) {
		t.Fatalf("write: %v", err)
	}
	if items, _ := inner.Get(ctx, k); items[0].Exists() {
		t.Fatal("a refused write was applied")
	}
}
