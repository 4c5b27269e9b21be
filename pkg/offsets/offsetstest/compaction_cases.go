package offsetstest

import (
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

var compactionCases = map[string]func(*testing.T, *env){
	"MergeMovesReferences": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "merge", 2)
		// One object shared by two partitions, plus single-partition ones.
		res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: "l0/shared", Size: 200}, []offsets.Append{app(0, 1), app(1, 1)})
		must(t, err)
		must(t, res[0].Err)
		commitN(t, e, tp, 0, 2)
		commitN(t, e, tp, 0, 3)
		old := checkTiling(t, e, tp, 0, 0, 6)
		l, err := e.store.AcquireLease(e.ctx, tp.ID, 0, "c", time.Minute)
		must(t, err)
		merged := offsets.IndexEntry{Base: 0, Last: 5, Records: 6, Offset: 8, Length: 600, MinTs: 1000, MaxTs: 2000, Level: 1}
		must(t, e.store.ReplaceEntries(e.ctx, l, old, merged, offsets.ObjectMeta{Key: "seg/m1", Size: 640}))
		now := checkTiling(t, e, tp, 0, 0, 6)
		if len(now) != 1 || now[0].Object != "seg/m1" || now[0].Records != 6 {
			t.Fatalf("after merge: %+v", now)
		}
		refs, err := e.store.ObjectRefs(e.ctx, []string{"l0/shared", old[1].Object, old[2].Object, "seg/m1"})
		must(t, err)
		if refs[0].Refs != 1 || refs[1].Refs != 0 || refs[2].Refs != 0 || refs[3].Refs != 1 {
			t.Fatalf("refs after merge: %+v", refs)
		}
		// Unreferenced objects become due after the grace period only.
		due, err := e.store.DueObjects(e.ctx, 0)
		must(t, err)
		if len(due) != 0 {
			t.Fatalf("due before grace: %+v", due)
		}
		e.clock.Advance(61 * time.Minute)
		due, err = e.store.DueObjects(e.ctx, 0)
		must(t, err)
		if len(due) != 2 {
			t.Fatalf("due after grace: %+v", due)
		}
		for _, d := range due {
			must(t, e.store.ForgetObject(e.ctx, d))
			must(t, e.store.ForgetObject(e.ctx, d)) // idempotent
		}
		due, _ = e.store.DueObjects(e.ctx, 0)
		refs, _ = e.store.ObjectRefs(e.ctx, []string{old[1].Object})
		if len(due) != 0 || refs[0].Known {
			t.Fatalf("forgotten objects still tracked: %+v %+v", due, refs)
		}
		// A changed entry (here: already replaced) makes a second swap fail.
		err = e.store.ReplaceEntries(e.ctx, l, old, merged, offsets.ObjectMeta{Key: "seg/m2", Size: 640})
		if err == nil {
			t.Fatal("replacing entries that no longer exist succeeded")
		}
		if got := checkTiling(t, e, tp, 0, 0, 6); got[0].Object != "seg/m1" {
			t.Fatal("failed swap changed the index")
		}
	},
	"TrimPrefix": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "trim", 1)
		for range 40 {
			commitN(t, e, tp, 0, 2) // 40 entries: more than one transaction to drop
		}
		entries := checkTiling(t, e, tp, 0, 0, 80)
		l, err := e.store.AcquireLease(e.ctx, tp.ID, 0, "c", time.Minute)
		must(t, err)
		must(t, e.store.TrimPrefix(e.ctx, l, entries[:35], 70))
		st, err := e.store.Partitions(e.ctx, tp, 0)
		must(t, err)
		if st[0].LogStart != 70 || st[0].LogEnd != 80 || st[0].Bytes != 5*200 {
			t.Fatalf("after trim: %+v", st[0])
		}
		checkTiling(t, e, tp, 0, 70, 80)
		// The log start never moves back, and only the first entries can go.
		wantErr(t, e.store.TrimPrefix(e.ctx, l, nil, 60), offsets.ErrInvalid)
		rest, _, _ := e.store.Index(e.ctx, tp.ID, 0, 0, 0)
		wantErr(t, e.store.TrimPrefix(e.ctx, l, rest[2:3], 76), offsets.ErrInvalid)
		wantErr(t, e.store.TrimPrefix(e.ctx, l, rest[:1], 90), offsets.ErrInvalid)
		// Trimming everything leaves an empty log at its end.
		must(t, e.store.TrimPrefix(e.ctx, l, rest, 80))
		st, _ = e.store.Partitions(e.ctx, tp, 0)
		if st[0].LogStart != 80 || st[0].LogEnd != 80 || st[0].Bytes != 0 {
			t.Fatalf("after full trim: %+v", st[0])
		}
		if r := commitN(t, e, tp, 0, 1); r.Base != 80 {
			t.Fatalf("append after full trim at %d, want 80", r.Base)
		}
	},
	"CursorAndRelease": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "cursor", 1)
		l, err := e.store.AcquireLease(e.ctx, tp.ID, 0, "c1", time.Minute)
		must(t, err)
		must(t, e.store.SaveCursor(e.ctx, l, "merged-to-40"))
		must(t, e.store.RenewLease(e.ctx, l, time.Minute))
		must(t, e.store.ReleaseLease(e.ctx, l))
		l2, err := e.store.AcquireLease(e.ctx, tp.ID, 0, "c2", time.Minute)
		must(t, err)
		if l2.Cursor() != "merged-to-40" {
			t.Fatalf("cursor %q not kept across leases", l2.Cursor())
		}
	},
	"PurgeDeletedTopic": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "purge", 2)
		for range 5 {
			commitN(t, e, tp, 0, 1)
		}
		must(t, commitOne(t, e, tp, idem(1, 1, 3, 0, 0)).Err)
		must(t, e.store.DeleteTopic(e.ctx, "purge"))
		del, _ := e.store.DeletedTopics(e.ctx, 0)
		for p := range del[0].Partitions {
			l, err := e.store.AcquireLease(e.ctx, del[0].ID, p, "purger", time.Minute)
			must(t, err)
			for i := 0; ; i++ {
				done, err := e.store.PurgePartition(e.ctx, l)
				must(t, err)
				if done {
					break
				}
				if i > 10 {
					t.Fatal("purge does not finish")
				}
			}
		}
		must(t, e.store.ForgetDeletedTopic(e.ctx, del[0]))
		for p := range int32(2) {
			items, _, err := e.table.Query(e.ctx, "p#"+tp.ID+"#"+string(rune('0'+p)), offsets.Prefix(""), 0)
			must(t, err)
			if len(items) != 0 {
				t.Fatalf("partition %d left %d items", p, len(items))
			}
		}
		e.clock.Advance(2 * time.Hour)
		due, _ := e.store.DueObjects(e.ctx, 0)
		if len(due) != 6 {
			t.Fatalf("%d objects due for GC, want 6", len(due))
		}
		if del, _ := e.store.DeletedTopics(e.ctx, 0); len(del) != 0 {
			t.Fatalf("cleanup queue not empty: %+v", del)
		}
	},
}
