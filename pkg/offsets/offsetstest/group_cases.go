package offsetstest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// joinGroup stores a group with member owning assigned at epoch.
func joinGroup(t *testing.T, e *env, group, member string, epoch int32, assigned []offsets.TopicPartitions) string {
	t.Helper()
	v, m, err := e.store.GroupMember(e.ctx, group, member)
	must(t, err)
	meta := v.Meta
	if m.Version == 0 {
		meta.Members++
	}
	meta.Epoch = max(meta.Epoch, epoch)
	meta.AssignmentEpoch = meta.Epoch
	next := offsets.Member{ID: member, Incarnation: "i1", Epoch: epoch, Topics: []string{"t"}, Owned: assigned,
		SessionTimeoutMs: 45000, DeadlineMs: e.clock.Now().Add(45 * time.Second).UnixMilli(), Version: m.Version}
	w := offsets.GroupWrite{Meta: &meta, MetaVersion: v.MetaVersion, PutMembers: []offsets.Member{next}}
	for _, tps := range assigned {
		for _, p := range tps.Partitions {
			w.PutOwners = append(w.PutOwners, offsets.OwnerPut{TopicPartition: offsets.TopicPartition{Topic: tps.Topic, Partition: p},
				Owner: offsets.PartitionOwner{Member: member, Incarnation: "i1"}, Expect: ownerVersion(t, e, group, tps.Topic, p)})
		}
	}
	must(t, e.store.WriteGroup(e.ctx, group, w))
	return group
}

func ownerVersion(t *testing.T, e *env, group, topic string, p int32) int64 {
	t.Helper()
	st, err := e.store.PartitionOwners(e.ctx, group, []offsets.TopicPartition{{Topic: topic, Partition: p}})
	must(t, err)
	return st[0].Version
}

var groupCases = map[string]func(*testing.T, *env){
	"DeleteCommittedOffsets": func(t *testing.T, e *env) {
		const g = "gdel"
		must(t, e.store.CommitOffsets(e.ctx, g, "", "", -1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 5}, {Topic: "t", Partition: 1, Offset: 6}, {Topic: "u", Partition: 0, Offset: 7}}))
		must(t, e.store.DeleteCommittedOffsets(e.ctx, g, []offsets.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 9}}))
		got, err := e.store.FetchOffsets(e.ctx, g, "")
		must(t, err)
		if len(got) != 2 || got[0].Topic != "t" || got[0].Partition != 1 || got[1].Topic != "u" {
			t.Fatalf("after deleting t/0: %+v", got)
		}
		// A group with no meta (only commits) works the same.
		must(t, e.store.DeleteCommittedOffsets(e.ctx, g, []offsets.TopicPartition{{Topic: "t", Partition: 1}, {Topic: "u", Partition: 0}}))
		got, err = e.store.FetchOffsets(e.ctx, g, "")
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("after deleting all: %+v", got)
		}
	},
	"MemberCommits": func(t *testing.T, e *env) {
		g := joinGroup(t, e, "g1", "m1", 1, []offsets.TopicPartitions{{Topic: "t", Partitions: []int32{0, 2}}})
		must(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 5, Metadata: "m"}, {Topic: "t", Partition: 2, Offset: 7}}))
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 1, Offset: 1}}), offsets.ErrPartitionNotAssigned)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m9", "", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}), offsets.ErrUnknownMember)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 2, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}), offsets.ErrStaleMemberEpoch)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: -1}}), offsets.ErrInvalid)
		wantErr(t, e.store.CommitOffsets(e.ctx, "no-such-group", "m1", "", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}), offsets.ErrUnknownMember)
		offs, err := e.store.FetchOffsets(e.ctx, g, "")
		must(t, err)
		if len(offs) != 2 || offs[0].Offset != 5 || offs[0].Metadata != "m" || offs[1].Offset != 7 || offs[0].MemberID != "m1" {
			t.Fatalf("offsets %+v", offs)
		}
		// A member whose session expired is unknown for commits.
		e.clock.Advance(46 * time.Second)
		wantErr(t, e.store.CommitOffsets(e.ctx, g, "m1", "", 1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 6}}), offsets.ErrUnknownMember)
	},
	"CommitsBoundToPrincipal": func(t *testing.T, e *env) {
		joinGroup(t, e, "owned-g", "m1", 1, []offsets.TopicPartitions{{Topic: "t", Partitions: []int32{0}}})
		v, m, err := e.store.GroupMember(e.ctx, "owned-g", "m1")
		must(t, err)
		m.Principal = "alice"
		must(t, e.store.WriteGroup(e.ctx, "owned-g", offsets.GroupWrite{CheckMeta: true, MetaVersion: v.MetaVersion, PutMembers: []offsets.Member{m}}))
		c := []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 4}}
		wantErr(t, e.store.CommitOffsets(e.ctx, "owned-g", "m1", "bob", 1, c), offsets.ErrUnknownMember)
		wantErr(t, e.store.CommitOffsets(e.ctx, "owned-g", "m1", "", 1, c), offsets.ErrUnknownMember)
		must(t, e.store.CommitOffsets(e.ctx, "owned-g", "m1", "alice", 1, c))
	},
	"StandaloneOnlyWhenEmpty": func(t *testing.T, e *env) {
		// A new group is created by a standalone commit.
		must(t, e.store.CommitOffsets(e.ctx, "admin-g", "", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 3}}))
		joinGroup(t, e, "admin-g", "m1", 1, nil)
		wantErr(t, e.store.CommitOffsets(e.ctx, "admin-g", "", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 9}}), offsets.ErrGroupNotEmpty)
		e.clock.Advance(time.Minute)
		must(t, e.store.CommitOffsets(e.ctx, "admin-g", "", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 9}}))
		offs, _ := e.store.FetchOffsets(e.ctx, "admin-g", "t")
		if len(offs) != 1 || offs[0].Offset != 9 {
			t.Fatalf("offsets %+v", offs)
		}
	},
	"WriteGroupIsConditional": func(t *testing.T, e *env) {
		joinGroup(t, e, "race-g", "m1", 1, []offsets.TopicPartitions{{Topic: "t", Partitions: []int32{0}}})
		v1, m1, err := e.store.GroupMember(e.ctx, "race-g", "m1")
		must(t, err)
		v2, m2, _ := e.store.GroupMember(e.ctx, "race-g", "m1")
		meta := v1.Meta
		meta.Epoch++
		must(t, e.store.WriteGroup(e.ctx, "race-g", offsets.GroupWrite{Meta: &meta, MetaVersion: v1.MetaVersion}))
		// Read before that change: a meta write or check loses...
		meta2 := v2.Meta
		meta2.Assignor = "range"
		wantErr(t, e.store.WriteGroup(e.ctx, "race-g", offsets.GroupWrite{Meta: &meta2, MetaVersion: v2.MetaVersion}), offsets.ErrConditionFailed)
		wantErr(t, e.store.WriteGroup(e.ctx, "race-g", offsets.GroupWrite{CheckMeta: true, MetaVersion: v2.MetaVersion, PutMembers: []offsets.Member{m2}}), offsets.ErrConditionFailed)
		// ...but the member item is its own: writing it needs only its version.
		m1.DeadlineMs++
		must(t, e.store.WriteGroup(e.ctx, "race-g", offsets.GroupWrite{PutMembers: []offsets.Member{m1}}))
		wantErr(t, e.store.WriteGroup(e.ctx, "race-g", offsets.GroupWrite{PutMembers: []offsets.Member{m2}}), offsets.ErrConditionFailed)
		// Two members taking one free partition: one wins.
		take := func(id string) error {
			return e.store.WriteGroup(e.ctx, "race-g", offsets.GroupWrite{PutOwners: []offsets.OwnerPut{{TopicPartition: offsets.TopicPartition{Topic: "t", Partition: 5}, Owner: offsets.PartitionOwner{Member: id, Incarnation: "x"}, Expect: 0}}})
		}
		must(t, take("a"))
		wantErr(t, take("b"), offsets.ErrConditionFailed)
		v3, _, _ := e.store.GroupMember(e.ctx, "race-g", "m1")
		if v3.Meta.Epoch != 2 || v3.Meta.Assignor == "range" {
			t.Fatalf("group after race %+v", v3.Meta)
		}
	},
	"OwnersSeeTheirHolders": func(t *testing.T, e *env) {
		joinGroup(t, e, "own-g", "m1", 1, []offsets.TopicPartitions{{Topic: "t", Partitions: []int32{0, 1}}})
		now := e.clock.Now().UnixMilli()
		st, err := e.store.PartitionOwners(e.ctx, "own-g", []offsets.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 2}})
		must(t, err)
		if !st[0].HeldBy("m2", now) || st[0].HeldBy("m1", now) || st[1].HeldBy("m2", now) {
			t.Fatalf("owners %+v", st)
		}
		// After m1's session ends, its partitions are free to others.
		e.clock.Advance(46 * time.Second)
		if st[0].HeldBy("m2", e.clock.Now().UnixMilli()) {
			t.Fatal("an expired member still holds its partition")
		}
	},
	"LargeAssignmentsSpanItems": func(t *testing.T, e *env) {
		targets := map[string][]offsets.TopicPartitions{}
		for m := range 5000 {
			targets[fmt.Sprintf("member-%05d-%s", m, strings.Repeat("x", 30))] = []offsets.TopicPartitions{{Topic: "orders", Partitions: []int32{int32(2 * m), int32(2*m + 1)}}}
		}
		ref, err := e.store.WriteAssignment(e.ctx, "big-g", "tag1", 7, targets)
		must(t, err)
		if ref.Chunks < 2 {
			t.Fatalf("%d items for 5000 members: the test does not cross items", ref.Chunks)
		}
		got, err := e.store.ReadAssignment(e.ctx, "big-g", ref)
		must(t, err)
		if len(got) != 5000 || fmt.Sprint(got["member-00042-"+strings.Repeat("x", 30)]) != fmt.Sprint(targets["member-00042-"+strings.Repeat("x", 30)]) {
			t.Fatalf("read back %d members", len(got))
		}
		must(t, e.store.DeleteAssignment(e.ctx, "big-g", ref))
		if _, err := e.store.ReadAssignment(e.ctx, "big-g", ref); err == nil {
			t.Fatal("a deleted assignment reads back")
		}
	},
	"ListAndDelete": func(t *testing.T, e *env) {
		for _, g := range []string{"b", "a", "c"} {
			must(t, e.store.CommitOffsets(e.ctx, g, "", "", 0, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 1}}))
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

// bumpMember moves a member to a new epoch, keeping what it owns.
func bumpMember(t *testing.T, e *env, group, member string, epoch int32) {
	t.Helper()
	v, m, err := e.store.GroupMember(e.ctx, group, member)
	must(t, err)
	meta := v.Meta
	meta.Epoch, meta.AssignmentEpoch = max(meta.Epoch, epoch), max(meta.Epoch, epoch)
	m.PreviousEpoch, m.Epoch = m.Epoch, epoch
	must(t, e.store.WriteGroup(e.ctx, group, offsets.GroupWrite{Meta: &meta, MetaVersion: v.MetaVersion, PutMembers: []offsets.Member{m}}))
}
