package offsets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A consumer group's state is spread over items of the group's partition
// key, so that a group of thousands of members over thousands of
// partitions stays within DynamoDB's item and transaction limits, and a
// steady member's heartbeat reads two small items and writes one:
//
//	g#{group} / meta                   GroupMeta: epochs, assignor, partition counts, installed assignment
//	g#{group} / m#{member}             Member: subscription, epoch, owned partitions, session deadline
//	g#{group} / o#{topic}#{p:010}      PartitionOwner: who may consume the partition
//	g#{group} / a#{tag}#{chunk:04}     AssignmentChunk: targets computed for one assignment (immutable)
//	g#{group} / c#{topic}#{p:010}      CommittedOffset
//
// Reads across items are not snapshots (a DynamoDB Query or BatchGetItem
// is read-committed per item), so no decision relies on one: a partition
// is handed to a member by a conditional write of its owner item, which
// two members cannot both win, and a takeover from a member that left,
// expired or released it is conditional on that member's item too.

const (
	ownerPrefix  = "o#"
	assignPrefix = "a#"
	// MaxAssignmentChunk bounds one assignment item's value.
	MaxAssignmentChunk = 300 << 10
)

// TopicPartitions names some partitions of one topic.
type TopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// TopicPartition is one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// AssignmentRef names the installed target assignment: its items.
type AssignmentRef struct {
	Tag    string `json:"tag,omitempty"`
	Chunks int    `json:"chunks,omitempty"`
}

// GroupMeta is a consumer group's shared state (KIP-848 style).
type GroupMeta struct {
	// Epoch is the group epoch, bumped whenever membership, subscriptions
	// or subscribed partition counts change.
	Epoch int32 `json:"epoch"`
	// AssignmentEpoch is the group epoch the installed assignment was
	// computed for (it may lag Epoch while the next one is computed).
	AssignmentEpoch int32         `json:"assignment_epoch"`
	Assignment      AssignmentRef `json:"assignment"`
	// AssigningUntilMs: a member is computing the next assignment until
	// then; others keep the installed one rather than all compute it.
	AssigningUntilMs int64  `json:"assigning_until_ms,omitempty"`
	Assignor         string `json:"assignor"`
	// PartitionCounts of the subscribed topics, as last seen.
	PartitionCounts map[string]int32 `json:"partition_counts,omitempty"`
	// FirstCounts is each subscribed topic's partition count when the
	// group first subscribed to it: partitions added later start at their
	// earliest offset, so records written to them before a member took
	// them are not skipped.
	FirstCounts map[string]int32 `json:"first_counts,omitempty"`
	// Members counts member items (live or not yet expired).
	Members int32 `json:"members"`
	// ScanAfterMs is the earliest a member's session can have ended: the
	// first heartbeat after it scans the members and expires the dead.
	ScanAfterMs int64 `json:"scan_after_ms,omitempty"`
	CreatedMs   int64 `json:"created_ms"`
	// Classic is the state of a group whose members assign partitions
	// themselves (Kafka's classic protocol, a leader member running a
	// custom assignor such as Kafka Streams'); nil for groups the broker
	// assigns. A group is of one kind at a time.
	Classic *ClassicGroup `json:"classic,omitempty"`
}

// Classic group states, as Kafka names them.
const (
	ClassicEmpty               = "Empty"
	ClassicPreparingRebalance  = "PreparingRebalance"
	ClassicCompletingRebalance = "CompletingRebalance"
	ClassicStable              = "Stable"
)

// ClassicGroup is a client-assigned group's membership, generation and
// the leader's assignment. It lives in the group's meta item, so every
// change is one conditional write of that item, which serializes the
// group's rebalances across nodes; it suits the groups that need it (a
// Kafka Streams application's instances), not thousands of members.
type ClassicGroup struct {
	State        string `json:"state"`
	Generation   int32  `json:"generation"`
	ProtocolType string `json:"protocol_type,omitempty"`
	Protocol     string `json:"protocol,omitempty"`
	Leader       string `json:"leader,omitempty"`
	// Round counts rebalances begun; a member that joined in the current
	// round has JoinedRound equal to it.
	Round int32 `json:"round"`
	// RebalanceDeadlineMs: members that have not rejoined by then are
	// left out of the next generation.
	RebalanceDeadlineMs int64                     `json:"rebalance_deadline_ms,omitempty"`
	Members             map[string]*ClassicMember `json:"members,omitempty"`
	// Assignments are the leader's, per member, for Generation.
	Assignments map[string][]byte `json:"assignments,omitempty"`
}

// ClassicMember is one member of a client-assigned group.
type ClassicMember struct {
	ClientID           string            `json:"client_id,omitempty"`
	Principal          string            `json:"principal,omitempty"`
	Protocols          []ClassicProtocol `json:"protocols"`
	SessionTimeoutMs   int32             `json:"session_timeout_ms"`
	RebalanceTimeoutMs int32             `json:"rebalance_timeout_ms"`
	DeadlineMs         int64             `json:"deadline_ms"`
	JoinedRound        int32             `json:"joined_round"`
	// InstanceID is a static member's group.instance.id: a new process of
	// the instance takes the member over under a new member id.
	InstanceID string `json:"instance_id,omitempty"`
}

// ClassicProtocol is one protocol (assignor) a member offers, with its
// metadata (for consumers, its subscription).
type ClassicProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

// LiveClassicMembers counts the members of a client-assigned group whose
// sessions have not ended at nowMs.
func (g *GroupMeta) LiveClassicMembers(nowMs int64) int {
	if g.Classic == nil {
		return 0
	}
	n := 0
	for _, m := range g.Classic.Members {
		if m.DeadlineMs > nowMs {
			n++
		}
	}
	return n
}

func (g *GroupMeta) validate() error {
	if g.Epoch < 0 || g.AssignmentEpoch < 0 || g.AssignmentEpoch > g.Epoch || g.Members < 0 || g.Assignment.Chunks < 0 {
		return fmt.Errorf("group epoch %d assignment epoch %d members %d", g.Epoch, g.AssignmentEpoch, g.Members)
	}
	return nil
}

// Member is one member of a group: its own item, rewritten by its
// heartbeats.
type Member struct {
	ID string `json:"id"`
	// Incarnation changes with every join, so that what an earlier
	// incarnation of the same id owned is recognisably stale.
	Incarnation string `json:"incarnation"`
	// Epoch fences the member's commits; PreviousEpoch is still accepted
	// on heartbeats, so a lost response does not fence a healthy member.
	Epoch         int32    `json:"epoch"`
	PreviousEpoch int32    `json:"previous_epoch"`
	Topics        []string `json:"topics"`
	// Owned is what the member may consume now. A partition is in at most
	// one live member's Owned: it is added only with the partition's owner
	// item, and moves on only after the member released it (a heartbeat
	// without it), left or expired.
	Owned            []TopicPartitions `json:"owned,omitempty"`
	SessionTimeoutMs int32             `json:"session_timeout_ms"`
	DeadlineMs       int64             `json:"deadline_ms"`
	ClientID         string            `json:"client_id,omitempty"`
	// Principal is who created this incarnation (authorization binds the
	// member to it).
	Principal string `json:"principal,omitempty"`
	JoinedMs  int64  `json:"joined_ms"`
	// InstanceID is a Kafka static member's group.instance.id (its ID
	// derives from it), and InstanceMemberID the member id its current
	// process was given. A restarted process takes the member over,
	// assignment and all, under a new member id; requests carrying an
	// older one are fenced.
	InstanceID       string `json:"instance_id,omitempty"`
	InstanceMemberID string `json:"instance_member_id,omitempty"`
	Version          int64  `json:"-"`
}

func (m *Member) validate() error {
	if m.ID == "" || m.Epoch < 0 || m.SessionTimeoutMs <= 0 {
		return fmt.Errorf("member %q epoch %d timeout %d", m.ID, m.Epoch, m.SessionTimeoutMs)
	}
	return nil
}

// Live reports whether the member's session is unexpired at nowMs.
func (m *Member) Live(nowMs int64) bool { return m.Version > 0 && m.DeadlineMs > nowMs }

// Owns reports whether the member owns topic/partition.
func (m *Member) Owns(topic string, p int32) bool {
	for _, tp := range m.Owned {
		if tp.Topic == topic && slices.Contains(tp.Partitions, p) {
			return true
		}
	}
	return false
}

// PartitionOwner is the token of a partition's ownership.
type PartitionOwner struct {
	Member      string `json:"member"`
	Incarnation string `json:"incarnation"`
}

func (o *PartitionOwner) validate() error {
	if o.Member == "" {
		return errors.New("partition owner without a member")
	}
	return nil
}

// OwnerState is a partition's owner item as read, with its owner's member
// item.
type OwnerState struct {
	TopicPartition
	Owner   PartitionOwner
	Version int64
	// Holder is the owner's member item (Version 0 if it is gone).
	Holder Member
}

// HeldBy reports whether a live member other than self holds the
// partition: its owner item names an existing incarnation that is live
// and still lists the partition. Anything else is free to take.
func (o OwnerState) HeldBy(self string, nowMs int64) bool {
	if o.Version == 0 || o.Owner.Member == self {
		return false
	}
	h := o.Holder
	return h.Live(nowMs) && h.Incarnation == o.Owner.Incarnation && h.Owns(o.Topic, o.Partition)
}

// AssignmentChunk is part of one computed target assignment.
type AssignmentChunk struct {
	Epoch   int32                        `json:"epoch"`
	Targets map[string][]TopicPartitions `json:"targets"`
}

func (a *AssignmentChunk) validate() error {
	if a.Epoch < 0 {
		return fmt.Errorf("assignment chunk epoch %d", a.Epoch)
	}
	return nil
}

// GroupView is a group's meta as read.
type GroupView struct {
	Name        string
	Exists      bool
	Meta        GroupMeta
	MetaVersion int64
}

// ValidateGroupName: the same characters as topics (they appear in keys),
// up to 249 of them.
func ValidateGroupName(g string) error {
	return validateName("group", "group name", g, MaxTopicNameLen)
}

// ValidateMemberID: 1-100 characters of [a-zA-Z0-9._-].
func ValidateMemberID(id string) error { return validateName("member_id", "member_id", id, 100) }

func metaKey(g string) Key { return Key{groupPK(g), skMeta} }

func ownerKey(g, topic string, p int32) Key {
	return Key{groupPK(g), fmt.Sprintf("%s%s#%010d", ownerPrefix, topic, p)}
}

func assignKey(g, tag string, chunk int) Key {
	return Key{groupPK(g), fmt.Sprintf("%s%s#%04d", assignPrefix, tag, chunk)}
}

func decodeMeta(g string, it Item) (GroupView, error) {
	v := GroupView{Name: g}
	if it.Exists() {
		if err := decode(it, &v.Meta); err != nil {
			return v, err
		}
		v.Exists, v.MetaVersion = true, it.Version
	}
	return v, nil
}

func decodeMember(it Item) (Member, error) {
	var m Member
	if it.Exists() {
		if err := decode(it, &m); err != nil {
			return m, err
		}
		m.Version = it.Version
	}
	return m, nil
}

// LoadGroupMeta reads a group's meta.
func (s *Store) LoadGroupMeta(ctx context.Context, group string) (GroupView, error) {
	if err := ValidateGroupName(group); err != nil {
		return GroupView{}, err
	}
	items, err := s.t.Get(ctx, metaKey(group))
	if err != nil {
		return GroupView{}, err
	}
	return decodeMeta(group, items[0])
}

// GroupMember reads a group's meta and one member's item (Version 0 when
// it does not exist) in one call.
func (s *Store) GroupMember(ctx context.Context, group, member string) (GroupView, Member, error) {
	if err := ValidateGroupName(group); err != nil {
		return GroupView{}, Member{}, err
	}
	items, err := s.t.Get(ctx, metaKey(group), memberKey(group, member))
	if err != nil {
		return GroupView{}, Member{}, err
	}
	v, err := decodeMeta(group, items[0])
	if err != nil {
		return v, Member{}, err
	}
	m, err := decodeMember(items[1])
	return v, m, err
}

// GroupMembers reads every member item of a group, by id.
func (s *Store) GroupMembers(ctx context.Context, group string) ([]Member, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	var out []Member
	err := s.queryAll(ctx, groupPK(group), Prefix(membPrefix), func(it Item) error {
		m, err := decodeMember(it)
		if err == nil {
			out = append(out, m)
		}
		return err
	})
	return out, err
}

// queryAll runs fn on every item of pk in r, page by page.
func (s *Store) queryAll(ctx context.Context, pk string, r Range, fn func(Item) error) error {
	for {
		items, more, err := s.t.Query(ctx, pk, r, 0)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if !more || len(items) == 0 {
			return nil
		}
		r.From = items[len(items)-1].SK + "\x01"
	}
}

// PartitionOwners reads the owner items of partitions, and the member
// items of their owners.
func (s *Store) PartitionOwners(ctx context.Context, group string, tps []TopicPartition) ([]OwnerState, error) {
	keys := make([]Key, len(tps))
	for i, x := range tps {
		keys[i] = ownerKey(group, x.Topic, x.Partition)
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]OwnerState, len(tps))
	var holders []Key
	seen := map[string]bool{}
	for i, it := range items {
		out[i].TopicPartition = tps[i]
		if !it.Exists() {
			continue
		}
		if err := decode(it, &out[i].Owner); err != nil {
			return nil, err
		}
		out[i].Version = it.Version
		if id := out[i].Owner.Member; !seen[id] {
			seen[id] = true
			holders = append(holders, memberKey(group, id))
		}
	}
	hitems, err := s.getMany(ctx, holders)
	if err != nil {
		return nil, err
	}
	byID := map[string]Member{}
	for _, it := range hitems {
		m, err := decodeMember(it)
		if err != nil {
			return nil, err
		}
		byID[strings.TrimPrefix(it.SK, membPrefix)] = m
	}
	for i := range out {
		if out[i].Version > 0 {
			out[i].Holder = byID[out[i].Owner.Member]
		}
	}
	return out, nil
}

// WriteAssignment stores a computed target assignment under a new tag, in
// as many items as it needs (create-only: an assignment never changes).
func (s *Store) WriteAssignment(ctx context.Context, group, tag string, epoch int32, targets map[string][]TopicPartitions) (AssignmentRef, error) {
	ids := make([]string, 0, len(targets))
	for id := range targets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var chunks []*AssignmentChunk
	cur, size := &AssignmentChunk{Epoch: epoch, Targets: map[string][]TopicPartitions{}}, 0
	for _, id := range ids {
		n := len(id) + 16
		for _, t := range targets[id] {
			n += len(t.Topic) + 24 + 11*len(t.Partitions)
		}
		if size > 0 && size+n > MaxAssignmentChunk {
			chunks = append(chunks, cur)
			cur, size = &AssignmentChunk{Epoch: epoch, Targets: map[string][]TopicPartitions{}}, 0
		}
		cur.Targets[id] = targets[id]
		size += n
	}
	chunks = append(chunks, cur)
	for start := 0; start < len(chunks); start += MaxWriteOps {
		var w tx
		for i := start; i < min(start+MaxWriteOps, len(chunks)); i++ {
			w.put(assignKey(group, tag, i), 0, chunks[i])
		}
		if err := s.t.Write(ctx, w.ops...); err != nil {
			return AssignmentRef{}, err
		}
	}
	return AssignmentRef{Tag: tag, Chunks: len(chunks)}, nil
}

// ReadAssignment reads an installed assignment's targets.
func (s *Store) ReadAssignment(ctx context.Context, group string, ref AssignmentRef) (map[string][]TopicPartitions, error) {
	out := map[string][]TopicPartitions{}
	if ref.Tag == "" {
		return out, nil
	}
	keys := make([]Key, ref.Chunks)
	for i := range keys {
		keys[i] = assignKey(group, ref.Tag, i)
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if !it.Exists() {
			return nil, fmt.Errorf("%w: assignment %s of group %s has lost item %s", ErrUnavailable, ref.Tag, group, it.SK)
		}
		var c AssignmentChunk
		if err := decode(it, &c); err != nil {
			return nil, err
		}
		for id, t := range c.Targets {
			out[id] = t
		}
	}
	return out, nil
}

// DeleteAssignment removes an assignment's items (one no longer
// installed).
func (s *Store) DeleteAssignment(ctx context.Context, group string, ref AssignmentRef) error {
	for start := 0; start < ref.Chunks; start += MaxWriteOps {
		var w tx
		for i := start; i < min(start+MaxWriteOps, ref.Chunks); i++ {
			w.del(assignKey(group, ref.Tag, i), AnyVersion)
		}
		if err := s.t.Write(ctx, w.ops...); err != nil {
			return err
		}
	}
	return nil
}

// OwnerPut takes (or re-takes) a partition's owner item, if it is at
// version Expect (0: absent).
type OwnerPut struct {
	TopicPartition
	Owner  PartitionOwner
	Expect int64
}

// GroupWrite is one conditional change of a group: every item written,
// deleted or checked must still be at the version it was read at, or
// nothing is written (an error wrapping ErrConditionFailed: read again).
type GroupWrite struct {
	// Meta, when set, is written at MetaVersion (0: the group is created).
	Meta *GroupMeta
	// CheckMeta only requires the meta to be at MetaVersion.
	CheckMeta   bool
	MetaVersion int64
	PutMembers  []Member // at their Version (0: new)
	// DeleteMembers and CheckMembers name members at their Version.
	DeleteMembers []Member
	CheckMembers  []Member
	PutOwners     []OwnerPut
}

// WriteGroup applies a GroupWrite atomically. It holds at most
// MaxWriteOps items.
func (s *Store) WriteGroup(ctx context.Context, group string, gw GroupWrite) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	var w tx
	switch {
	case gw.Meta != nil:
		w.put(metaKey(group), gw.MetaVersion, gw.Meta)
		if gw.MetaVersion == 0 {
			w.put(groupDirKey(group), AnyVersion, &groupDir{Name: group})
		}
	case gw.CheckMeta:
		w.check(metaKey(group), gw.MetaVersion)
	}
	for _, m := range gw.PutMembers {
		w.putTTL(memberKey(group, m.ID), m.Version, &m, memberTTL(m))
	}
	for _, m := range gw.DeleteMembers {
		w.del(memberKey(group, m.ID), m.Version)
	}
	for _, m := range gw.CheckMembers {
		w.check(memberKey(group, m.ID), m.Version)
	}
	for _, o := range gw.PutOwners {
		w.put(ownerKey(group, o.Topic, o.Partition), o.Expect, &o.Owner)
	}
	if len(w.ops) == 0 {
		return nil
	}
	if len(w.ops) > MaxWriteOps {
		return invalidf("group write touches %d items, limit %d", len(w.ops), MaxWriteOps)
	}
	return s.t.Write(ctx, w.ops...)
}

type groupDir struct {
	Name string `json:"name"`
}

func (d *groupDir) validate() error {
	if d.Name == "" {
		return errors.New("group directory entry without a name")
	}
	return nil
}

// CommittedOffset is a group's committed position on a partition: the
// next offset to consume.
type CommittedOffset struct {
	Topic       string `json:"topic"`
	TopicID     string `json:"topic_id,omitempty"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	Metadata    string `json:"metadata,omitempty"`
	CommittedMs int64  `json:"committed_ms"`
	MemberID    string `json:"member_id,omitempty"`
}

func (c *CommittedOffset) validate() error {
	if c.Topic == "" || c.Partition < 0 || c.Offset < 0 {
		return fmt.Errorf("committed offset %+v", *c)
	}
	return nil
}

// MaxCommitMetadata bounds commit metadata (Kafka's default is 4096).
const MaxCommitMetadata = 4096

// LiveMembers returns the members live at nowMs.
func LiveMembers(ms []Member, nowMs int64) []Member {
	var out []Member
	for _, m := range ms {
		if m.Live(nowMs) {
			out = append(out, m)
		}
	}
	return out
}

// CommitOffsets stores committed offsets for a group. With a member id, the
// member must exist, belong to principal ("" without authentication), be
// live, carry its current epoch and own every
// partition (ErrUnknownMember, ErrStaleMemberEpoch,
// ErrPartitionNotAssigned); the write is conditional on the member item, so
// a zombie whose epoch was bumped concurrently changes nothing. Without a
// member id (a standalone commit, as by admin tools) the group must have no
// live members (ErrGroupNotEmpty); the group is created if needed.
func (s *Store) CommitOffsets(ctx context.Context, group, memberID, principal string, memberEpoch int32, offsets []CommittedOffset) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if len(offsets) == 0 || len(offsets) > MaxWriteOps-2 {
		return invalid("offsets", "commit between 1 and %d offsets at once", MaxWriteOps-2)
	}
	seen := map[TopicPartition]bool{}
	for i, o := range offsets {
		switch {
		case o.Offset < 0:
			return invalid(fmt.Sprintf("offsets[%d].offset", i), "%d is negative", o.Offset)
		case len(o.Metadata) > MaxCommitMetadata:
			return invalid(fmt.Sprintf("offsets[%d].metadata", i), "%d bytes, the limit is %d", len(o.Metadata), MaxCommitMetadata)
		case ValidateTopicName(o.Topic) != nil || o.Partition < 0:
			return invalid(fmt.Sprintf("offsets[%d]", i), "topic %q partition %d is not a valid partition", o.Topic, o.Partition)
		case seen[TopicPartition{o.Topic, o.Partition}]:
			return invalid(fmt.Sprintf("offsets[%d]", i), "%s/%d appears twice", o.Topic, o.Partition)
		}
		seen[TopicPartition{o.Topic, o.Partition}] = true
	}
	// unknown is a write whose outcome is unknown (see resolveCommit).
	var unknown *pendingCommit
	return s.loop(ctx, "commit offsets", func() (bool, error) {
		if unknown != nil {
			done, err := s.resolveCommit(ctx, unknown)
			if done || err != nil {
				return done, err
			}
			unknown = nil // it did not land and cannot: commit afresh
		}
		now := s.nowMs()
		var w tx
		if memberID != "" {
			_, m, err := s.GroupMember(ctx, group, memberID)
			if err != nil {
				return false, err
			}
			if !m.Live(now) || m.Principal != principal {
				return false, fmt.Errorf("%w: %s in group %s", ErrUnknownMember, memberID, group)
			}
			if m.Epoch != memberEpoch {
				return false, fmt.Errorf("%w: member %s has epoch %d, the commit carries %d", ErrStaleMemberEpoch, memberID, m.Epoch, memberEpoch)
			}
			for _, o := range offsets {
				if !m.Owns(o.Topic, o.Partition) {
					return false, fmt.Errorf("%w: %s/%d is not owned by %s", ErrPartitionNotAssigned, o.Topic, o.Partition, memberID)
				}
			}
			// Decided on the member's item: the commit lands only if it
			// did not change meanwhile, and it rewrites the item (as read)
			// so that commits are ordered by its version: a commit whose
			// answer was lost and that lands late finds the version moved
			// by any commit after it and is refused, instead of putting
			// older offsets back.
			w.putTTL(memberKey(group, memberID), m.Version, &m, memberTTL(m))
		} else {
			v, err := s.LoadGroupMeta(ctx, group)
			if err != nil {
				return false, err
			}
			members, err := s.GroupMembers(ctx, group)
			if err != nil {
				return false, err
			}
			if live := LiveMembers(members, now); len(live) > 0 {
				return false, fmt.Errorf("%w: %s has %d live members; commit as a member or wait until it is empty", ErrGroupNotEmpty, group, len(live))
			}
			// A join writes the meta: conditioning on it keeps a member
			// from joining between the check and the commit. Rewriting it
			// orders commits, as the member's item does above.
			if v.Exists {
				w.put(metaKey(group), v.MetaVersion, &v.Meta)
			} else {
				w.put(metaKey(group), 0, &GroupMeta{Assignor: "uniform", CreatedMs: now})
				w.put(groupDirKey(group), AnyVersion, &groupDir{Name: group})
			}
		}
		p := &pendingCommit{}
		for _, o := range offsets {
			o.CommittedMs, o.MemberID = now, memberID
			k := commitKey(group, o.Topic, o.Partition)
			w.put(k, AnyVersion, &o)
			p.keys, p.mine = append(p.keys, k), append(p.mine, o)
		}
		// The versions the commit's items have now: after an ambiguous
		// write they tell whether anyone committed since.
		items, err := s.t.Get(ctx, p.keys...)
		if err != nil {
			return false, err
		}
		for _, it := range items {
			p.before = append(p.before, it.Version)
		}
		p.ops = w.ops
		err = s.t.Write(ctx, w.ops...)
		if ambiguous(ctx, err) {
			unknown = p
			return false, fmt.Errorf("%w: %v", ErrConflict, err) // resolve it, then decide
		}
		return err == nil, err
	})
}

// pendingCommit is an offset commit whose write's outcome is unknown.
type pendingCommit struct {
	ops    []Op
	keys   []Key             // its offsets' items
	mine   []CommittedOffset // what it wrote there
	before []int64           // their versions before it
}

// resolveCommit decides an offset commit whose write's outcome is
// unknown without writing its offsets again after they may have landed:
// a commit repeated later, after other commits of the same partitions,
// would move the committed offset back. It repeats the write with the
// same conditions, which either applies it now (the first did not land,
// and cannot any more) or is refused; then the items tell: ours are there
// (landed), or others committed since (ours landed and was overwritten, or
// never will land — either way it is ordered before theirs), or the items
// are as they were (it did not land and cannot: done is false, commit
// afresh).
func (s *Store) resolveCommit(ctx context.Context, p *pendingCommit) (bool, error) {
	err := s.t.Write(ctx, p.ops...)
	switch {
	case err == nil:
		return true, nil
	case ambiguous(ctx, err), errors.Is(err, ErrConflict), errors.Is(err, ErrThrottled):
		return false, fmt.Errorf("%w: the commit's outcome is still unknown: %v", ErrConflict, err)
	case !errors.Is(err, ErrConditionFailed):
		return false, err
	}
	items, err := s.t.Get(ctx, p.keys...)
	if err != nil {
		return false, err
	}
	for i, it := range items {
		if it.Version == p.before[i] {
			return false, nil // untouched: ours did not land
		}
	}
	return true, nil
}

// memberTTL keeps a member's item a day past its expiry, for inspection.
func memberTTL(m Member) int64 { return (m.DeadlineMs + 24*3600*1000) / 1000 }

// FetchOffsets returns a group's committed offsets, optionally only those
// of one topic.
func (s *Store) FetchOffsets(ctx context.Context, group, topic string) ([]CommittedOffset, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	prefix := commPrefix
	if topic != "" {
		prefix += topic + "#"
	}
	var out []CommittedOffset
	err := s.queryAll(ctx, groupPK(group), Prefix(prefix), func(it Item) error {
		var c CommittedOffset
		if err := decode(it, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// ListGroups returns group names after `after`, up to limit, and the name
// to continue from ("" at the end).
func (s *Store) ListGroups(ctx context.Context, after string, limit int) ([]string, string, error) {
	from := "g#"
	if after != "" {
		from = "g#" + after + "\x01"
	}
	items, more, err := s.t.Query(ctx, pkGroups, Range{From: from, To: "g#~"}, limit)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = strings.TrimPrefix(it.SK, "g#")
	}
	next := ""
	if more && len(names) > 0 {
		next = names[len(names)-1]
	}
	return names, next, nil
}

// DeleteCommittedOffsets removes a group's committed offsets of some
// partitions (absent ones are skipped), in writes conditional on the
// group's meta so that a join meanwhile is noticed (the caller checks that
// no live member consumes those topics).
func (s *Store) DeleteCommittedOffsets(ctx context.Context, group string, tps []TopicPartition) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	return s.loop(ctx, "delete committed offsets", func() (bool, error) {
		v, err := s.LoadGroupMeta(ctx, group)
		if err != nil {
			return false, err
		}
		keys := make([]Key, len(tps))
		for i, tp := range tps {
			keys[i] = commitKey(group, tp.Topic, tp.Partition)
		}
		for len(keys) > 0 {
			n := min(len(keys), MaxWriteOps-1, 100)
			items, err := s.t.Get(ctx, keys[:n]...)
			if err != nil {
				return false, err
			}
			var w tx
			if v.Exists {
				w.check(metaKey(group), v.MetaVersion)
			}
			for _, it := range items {
				if it.Exists() {
					w.del(it.Key, it.Version)
				}
			}
			if len(w.ops) > 1 || !v.Exists && len(w.ops) > 0 {
				if err := s.t.Write(ctx, w.ops...); err != nil {
					return false, err
				}
			}
			keys = keys[n:]
		}
		return true, nil
	})
}

// DeleteGroup removes a group with no live members: its committed
// offsets, members, owner and assignment items (in chunks, each
// conditional on the meta, so a member joining meanwhile stops it), then
// its meta and directory entry. It is retryable; a failure part way
// leaves the group in place with less in it.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	return s.loop(ctx, "delete group", func() (bool, error) {
		v, err := s.LoadGroupMeta(ctx, group)
		if err != nil {
			return false, err
		}
		if !v.Exists {
			return false, fmt.Errorf("%w: %s", ErrUnknownGroup, group)
		}
		members, err := s.GroupMembers(ctx, group)
		if err != nil {
			return false, err
		}
		if live := LiveMembers(members, s.nowMs()); len(live) > 0 {
			return false, fmt.Errorf("%w: %s has %d live members", ErrGroupNotEmpty, group, len(live))
		}
		for _, prefix := range []string{assignPrefix, commPrefix, membPrefix, ownerPrefix} {
			for {
				items, more, err := s.t.Query(ctx, groupPK(group), Prefix(prefix), MaxWriteOps-1)
				if err != nil {
					return false, err
				}
				if len(items) == 0 {
					break
				}
				var w tx
				w.check(metaKey(group), v.MetaVersion)
				for _, it := range items {
					w.del(it.Key, it.Version)
				}
				if err := s.t.Write(ctx, w.ops...); err != nil {
					return false, err
				}
				if !more {
					break
				}
			}
		}
		var w tx
		w.del(metaKey(group), v.MetaVersion)
		w.del(groupDirKey(group), AnyVersion)
		return true, s.t.Write(ctx, w.ops...)
	})
}
