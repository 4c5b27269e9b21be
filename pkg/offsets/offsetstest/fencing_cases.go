package offsetstest

import (
	"errors"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// fencingCases: every kind of writer fencing (producer epochs, fencing
// tokens, expected offsets, compactor leases). A fenced writer must
// change nothing.
var fencingCases = map[string]func(*testing.T, *env){
	"ProducerEpoch": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "epochs", 1)
		must(t, commitOne(t, e, tp, idem(0, 2, 40, 3, 0)).Err)
		// A new epoch must start at sequence 0...
		wantErr(t, commitOne(t, e, tp, idem(0, 1, 40, 4, 2)).Err, offsets.ErrOutOfOrderSequence)
		// ...and then fences the old one.
		must(t, commitOne(t, e, tp, idem(0, 1, 40, 4, 0)).Err)
		before := logEnd(t, e, tp, 0)
		r := commitOne(t, e, tp, idem(0, 1, 40, 3, 2))
		wantErr(t, r.Err, offsets.ErrProducerFenced)
		if logEnd(t, e, tp, 0) != before {
			t.Fatal("a fenced producer appended")
		}
		// Even its duplicate is refused rather than answered.
		wantErr(t, commitOne(t, e, tp, idem(0, 2, 40, 3, 0)).Err, offsets.ErrProducerFenced)
	},
	"ExpectedOffset": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "cas", 1)
		a := app(0, 2)
		a.ExpectedOffset = 0
		must(t, commitOne(t, e, tp, a).Err)
		stale := app(0, 1)
		stale.ExpectedOffset = 0
		r := commitOne(t, e, tp, stale)
		var om *offsets.OffsetMismatchError
		if !errors.As(r.Err, &om) || om.LogEnd != 2 || om.Expected != 0 || !errors.Is(r.Err, offsets.ErrExpectedOffsetMismatch) {
			t.Fatalf("stale expected offset: %v", r.Err)
		}
		if logEnd(t, e, tp, 0) != 2 {
			t.Fatal("a stale expected_offset appended")
		}
		a.ExpectedOffset = 2
		must(t, commitOne(t, e, tp, a).Err)
	},
	"ExpectedOffsetRetryIsDuplicate": func(t *testing.T, e *env) {
		// An idempotent retry of a conditional append that already landed
		// gets its original offsets, not an offset mismatch.
		tp := createTopic(t, e, "casidem", 1)
		a := idem(0, 1, 11, 0, 0)
		a.ExpectedOffset = 0
		first := commitOne(t, e, tp, a)
		must(t, first.Err)
		again := commitOne(t, e, tp, a)
		if again.Err != nil || !again.Duplicate || again.Base != 0 {
			t.Fatalf("retry: %+v", again)
		}
	},
	"WriterToken": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "tokens", 1)
		must(t, e.store.SetFenceToken(e.ctx, tp, 0, nil, "writer-a"))
		a, b := "writer-a", "writer-b"
		withA, withB := app(0, 1), app(0, 1)
		withA.FenceToken, withB.FenceToken = &a, &b
		must(t, commitOne(t, e, tp, withA).Err)
		wantErr(t, commitOne(t, e, tp, withB).Err, offsets.ErrFenced)
		// Only the current holder can hand over.
		wantErr(t, e.store.SetFenceToken(e.ctx, tp, 0, &b, "writer-c"), offsets.ErrFenced)
		must(t, e.store.SetFenceToken(e.ctx, tp, 0, &a, "writer-b"))
		wantErr(t, commitOne(t, e, tp, withA).Err, offsets.ErrFenced)
		must(t, commitOne(t, e, tp, withB).Err)
		// Appends without a token are not checked (as in S2).
		must(t, commitOne(t, e, tp, app(0, 1)).Err)
		if logEnd(t, e, tp, 0) != 3 {
			t.Fatalf("log end %d, want 3", logEnd(t, e, tp, 0))
		}
	},
	"CompactorLease": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "lease", 1)
		for range 3 {
			commitN(t, e, tp, 0, 2)
		}
		l1, err := e.store.AcquireLease(e.ctx, tp.ID, 0, "compactor-1", time.Minute)
		must(t, err)
		_, err = e.store.AcquireLease(e.ctx, tp.ID, 0, "compactor-2", time.Minute)
		wantErr(t, err, offsets.ErrLeaseHeld)
		e.clock.Advance(2 * time.Minute)
		l2, err := e.store.AcquireLease(e.ctx, tp.ID, 0, "compactor-2", time.Minute)
		must(t, err)
		if l2.Epoch != l1.Epoch+1 {
			t.Fatalf("epochs %d then %d", l1.Epoch, l2.Epoch)
		}
		entries, _, err := e.store.Index(e.ctx, tp.ID, 0, 0, 0)
		must(t, err)
		// The stale compactor cannot merge, trim, renew or save progress.
		merged := offsets.IndexEntry{Base: 0, Last: 5, Records: 6, Offset: 8, Length: 600, Level: 1}
		wantErr(t, e.store.ReplaceEntries(e.ctx, l1, entries, merged, offsets.ObjectMeta{Key: "seg/stale", Size: 700}), offsets.ErrLeaseLost)
		wantErr(t, e.store.TrimPrefix(e.ctx, l1, entries[:1], 2), offsets.ErrLeaseLost)
		wantErr(t, e.store.RenewLease(e.ctx, l1, time.Minute), offsets.ErrLeaseLost)
		wantErr(t, e.store.SaveCursor(e.ctx, l1, "x"), offsets.ErrLeaseLost)
		after, _, err := e.store.Index(e.ctx, tp.ID, 0, 0, 0)
		must(t, err)
		if len(after) != 3 || after[0].Object != entries[0].Object {
			t.Fatalf("a stale compactor changed the index: %+v", after)
		}
		st, _ := e.store.Partitions(e.ctx, tp, 0)
		if st[0].LogStart != 0 {
			t.Fatal("a stale compactor moved the log start")
		}
		// The current holder can.
		must(t, e.store.ReplaceEntries(e.ctx, l2, entries, merged, offsets.ObjectMeta{Key: "seg/fresh", Size: 700}))
	},
	"MemberEpoch": func(t *testing.T, e *env) {
		g := joinGroup(t, e, "fence-g", "m1", 5, []offsets.TopicPartitions{{Topic: "t", Partitions: []int32{0}}})
		must(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 5, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 10}}))
		// The member is bumped to epoch 6 (a rebalance); the zombie at 5 is fenced.
		bumpMember(t, e, g, "m1", 6)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 5, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 99}}), offsets.ErrStaleMemberEpoch)
		offs, err := e.store.FetchOffsets(e.ctx, g, "")
		must(t, err)
		if len(offs) != 1 || offs[0].Offset != 10 {
			t.Fatalf("a zombie commit changed offsets: %+v", offs)
		}
	},
}
