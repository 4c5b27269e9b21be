package offsetstest

import (
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// joinGroup stores a group with member owning assigned at epoch.
func joinGroup(t *testing.T, e *env, group, member string, epoch int32, assigned []offsets.TopicPartitions) string {
	t.Helper()
	g, err := e.store.LoadGroup(e.ctx, group)
	must(t, err)
	meta := g.Meta
	if meta.Members == nil {
		meta.Members = map[string]*offsets.GroupMember{}
	}
	meta.Members[member] = &offsets.GroupMember{Epoch: epoch, Topics: []string{"t"}, Target: assigned, Owned: assigned}
	meta.Epoch = max(meta.Epoch, epoch)
	meta.AssignmentEpoch = meta.Epoch
	sess := offsets.Session{ID: member, SessionTimeoutMs: 45000, DeadlineMs: e.clock.Now().Add(45 * time.Second).UnixMilli()}
	if old, ok := g.Sessions[member]; ok {
		sess.Version = old.Version
	}
	must(t, e.store.SaveGroup(e.ctx, g, offsets.GroupChange{Meta: &meta, PutSessions: []offsets.Session{sess}}))
	return group
}

func bumpMember(t *testing.T, e *env, group, member string, epoch int32) {
	t.Helper()
	g, err := e.store.LoadGroup(e.ctx, group)
	must(t, err)
	joinGroup(t, e, group, member, epoch, g.Meta.Members[member].Owned)
}

var groupCases = map[string]func(*testing.T, *env){
	"MemberCommits": func(t *testing.T, e *env) {
		g := joinGroup(t, e, "g1", "m1", 1, []offsets.TopicPartitions{{Topic: "t", Partitions: []int32{0, 2}}})
		must(t, e.store.CommitOffsets(e.ctx, g, "m1", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 5, Metadata: "m"}, {Topic: "t", Partition: 2, Offset: 7}}))
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 1, Offset: 1}}), offsets.ErrPartitionNotAssigned)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m9", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}), offsets.ErrUnknownMember)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", 2, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}), offsets.ErrStaleMemberEpoch)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: -1}}), offsets.ErrInvalid)
		wantErr(t, e.store.CommitOffsets(e.ctx, "no-such-group", "m1", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}), offsets.ErrUnknownMember)
		offs, err := e.store.FetchOffsets(e.ctx, g, "")
		must(t, err)
		if len(offs) != 2 || offs[0].Offset != 5 || offs[0].Metadata != "m" || offs[1].Offset != 7 || offs[0].MemberID != "m1" {
			t.Fatalf("offsets %+v", offs)
		}
		// A member whose session expired is unknown for commits.
		e.clock.Advance(46 * time.Second)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 6}}), offsets.ErrUnknownMember)
	},
	"StandaloneOnlyWhenEmpty": func(t *testing.T, e *env) {
		// A new group is created by a standalone commit.
		must(t, e.store.CommitOffsets(e.ctx, "admin-g", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 3}}))
		joinGroup(t, e, "admin-g", "m1", 1, nil)
		wantErr(t, e.store.CommitOffsets(e.ctx, "admin-g", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 9}}), offsets.ErrGroupNotEmpty)
		e.clock.Advance(time.Minute)
		must(t, e.store.CommitOffsets(e.ctx, "admin-g", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 9}}))
		offs, _ := e.store.FetchOffsets(e.ctx, "admin-g", "t")
		if len(offs) != 1 || offs[0].Offset != 9 {
			t.Fatalf("offsets %+v", offs)
		}
	},
	"SaveIsConditional": func(t *testing.T, e *env) {
		joinGroup(t, e, "race-g", "m1", 1, nil)
		g1, _ := e.store.LoadGroup(e.ctx, "race-g")
		g2, _ := e.store.LoadGroup(e.ctx, "race-g")
		meta := g1.Meta
		meta.Epoch++
		must(t, e.store.SaveGroup(e.ctx, g1, offsets.GroupChange{Meta: &meta}))
		// g2 was read before that change: its writes must lose, even a
		// session-only one (the meta is checked).
		sess := g2.Sessions["m1"]
		sess.DeadlineMs++
		wantErr(t, e.store.SaveGroup(e.ctx, g2, offsets.GroupChange{PutSessions: []offsets.Session{sess}}), offsets.ErrConditionFailed)
		meta2 := g2.Meta
		meta2.Assignor = "range"
		wantErr(t, e.store.SaveGroup(e.ctx, g2, offsets.GroupChange{Meta: &meta2}), offsets.ErrConditionFailed)
		g3, _ := e.store.LoadGroup(e.ctx, "race-g")
		if g3.Meta.Epoch != 2 || g3.Meta.Assignor == "range" || g3.Sessions["m1"].DeadlineMs != g1.Sessions["m1"].DeadlineMs {
			t.Fatalf("group after race %+v", g3)
		}
	},
	"ListAndDelete": func(t *testing.T, e *env) {
		for _, g := range []string{"b", "a", "c"} {
			must(t, e.store.CommitOffsets(e.ctx, g, "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}))
		}
		names, next, err := e.store.ListGroups(e.ctx, "", 2)
		must(t, err)
		if len(names) != 2 || names[0] != "a" || next != "b" {
			t.Fatalf("page 1 %v next %q", names, next)
		}
		names, _, _ = e.store.ListGroups(e.ctx, next, 2)
		if len(names) != 1 || names[0] != "c" {
			t.Fatalf("page 2 %v", names)
		}
		joinGroup(t, e, "b", "m1", 1, nil)
		wantErr(t, e.store.DeleteGroup(e.ctx, "b"), offsets.ErrGroupNotEmpty)
		must(t, e.store.DeleteGroup(e.ctx, "a"))
		wantErr(t, e.store.DeleteGroup(e.ctx, "a"), offsets.ErrUnknownGroup)
		if offs, _ := e.store.FetchOffsets(e.ctx, "a", ""); len(offs) != 0 {
			t.Fatalf("deleted group kept offsets %+v", offs)
		}
		names, _, _ = e.store.ListGroups(e.ctx, "", 0)
		if len(names) != 2 {
			t.Fatalf("groups after delete %v", names)
		}
	},
}
