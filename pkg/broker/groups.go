package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/retry"
	"github.com/streambed/streambed/pkg/segments"
)

// Group protocol limits and defaults.
const (
	DefaultSessionTimeout = 45 * time.Second
	MinSessionTimeout     = time.Second
	MaxSessionTimeout     = 30 * time.Minute
	MaxSubscribedTopics   = 100
	// MaxGroupMembers bounds a group (its state is one item per member,
	// so this is a cost bound, not a storage one).
	MaxGroupMembers = 10_000
	// assignClaim is how long a member computing the next assignment
	// keeps others from doing the same.
	assignClaim = 10 * time.Second
	// scanClaim is how long a member scanning for expired members keeps
	// others from doing the same.
	scanClaim = 5 * time.Second
	// maxAcquire bounds the partitions one heartbeat hands a member; the
	// rest follow on its next heartbeats.
	maxAcquire = 2000
	// ownersPerWrite: a write holds the member, its new owner items and a
	// check of each member it takes a partition over from.
	ownersPerWrite = (offsets.MaxWriteOps - 1) / 2
)

// Heartbeat is one call of the group protocol: join (MemberEpoch 0), stay
// (the current or previous member epoch) or leave (-1).
type Heartbeat struct {
	Group       string
	MemberID    string // chosen by the client; generated on join if empty
	MemberEpoch int32
	// Topics is the subscription: required to join, nil to keep it.
	Topics []string
	// Owned is what the member consumes now; nil leaves it as it was. A
	// partition missing from Owned is released.
	Owned          []offsets.TopicPartitions
	SessionTimeout time.Duration // 0: 45 s on join, unchanged later
	// Assignor ("uniform" or "range") applies when the heartbeat creates the
	// group or joins it while it is empty.
	Assignor string
	ClientID string
	// Principal is the authenticated caller, recorded on join.
	Principal string
	// InstanceID and InstanceMemberID, for a Kafka static member, are its
	// group.instance.id and the member id its current process uses:
	// recorded on join, the latter replaced (fencing the process that had
	// it) when another process of the same instance takes the member over.
	InstanceID, InstanceMemberID string
}

// HeartbeatResult answers a heartbeat: what the member should own now. It
// stops consuming anything else and reports the list as Owned next time.
type HeartbeatResult struct {
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	Assignment        []offsets.TopicPartitions
	// FirstCounts: partitions at or above these indexes were added after
	// the group subscribed to the topic (they start at the earliest offset).
	FirstCounts map[string]int32
	// Changed: Assignment differs from what the member owned before this
	// heartbeat (partitions to give up, or partitions handed to it). A
	// classic Kafka member is told to rejoin then.
	Changed bool
}

func (b *Broker) validateHeartbeat(h *Heartbeat) error {
	if err := offsets.ValidateGroupName(h.Group); err != nil {
		return err
	}
	switch {
	case h.MemberEpoch < -1:
		return fieldErr("member_epoch", "%d: use 0 to join, -1 to leave, or the epoch you were given", h.MemberEpoch)
	case h.MemberID == "" && h.MemberEpoch != 0:
		return fieldErr("member_id", "is required except when joining")
	case h.MemberID == "":
		h.MemberID = "m-" + randomHex(12)
	}
	if err := offsets.ValidateMemberID(h.MemberID); err != nil {
		return err
	}
	if h.MemberEpoch == 0 && len(h.Topics) == 0 {
		return fieldErr("topics", "subscribe to at least one topic to join")
	}
	if len(h.Topics) > MaxSubscribedTopics {
		return fieldErr("topics", "%d topics, the limit is %d", len(h.Topics), MaxSubscribedTopics)
	}
	for i, t := range h.Topics {
		if err := offsets.ValidateTopicName(t); err != nil {
			return fieldErr(fmt.Sprintf("topics[%d]", i), "%q is not a topic name", t)
		}
	}
	if h.SessionTimeout != 0 && (h.SessionTimeout < MinSessionTimeout || h.SessionTimeout > MaxSessionTimeout) {
		return fieldErr("session_timeout_ms", "%d must be between %d and %d", h.SessionTimeout.Milliseconds(), MinSessionTimeout.Milliseconds(), MaxSessionTimeout.Milliseconds())
	}
	switch h.Assignor {
	case "", AssignorUniform, AssignorRange:
	case "uniform-sticky":
		h.Assignor = AssignorUniform
	default:
		return fieldErr("assignor", "%q: use uniform or range", h.Assignor)
	}
	return nil
}

func randomHex(n int) string {
	raw := make([]byte, n)
	_, _ = rand.Read(raw)
	return hex.EncodeToString(raw)
}

// Heartbeat runs one heartbeat, in three steps, each a conditional write
// retried on races with a fresh read:
//
//  1. membership: join, leave, or check the member (live, current or
//     previous epoch) and apply a subscription change; a change of
//     membership, subscriptions or a subscribed topic's partition count
//     bumps the group epoch;
//  2. upkeep, by whichever heartbeat finds it due: expire members whose
//     session ended, and compute a new target assignment when the group
//     epoch moved past the installed one;
//  3. reconciliation of this member: partitions it must give up are
//     withheld (it keeps owning them until it heartbeats without them),
//     partitions of its target are handed over only once no live member
//     holds them, and its epoch moves to the assignment epoch when it has
//     nothing left to revoke.
//
// A steady member's heartbeat reads the group's meta and its own item,
// and writes its own item only to renew its session once a quarter of it
// has passed: groups of thousands of members cost each member what a
// small group does, and polls between heartbeats write nothing.
func (b *Broker) Heartbeat(ctx context.Context, h Heartbeat) (HeartbeatResult, error) {
	if err := b.validateHeartbeat(&h); err != nil {
		return HeartbeatResult{}, err
	}
	out := HeartbeatResult{MemberID: h.MemberID}
	var member offsets.Member
	var view offsets.GroupView
	err := b.groupLoop(ctx, h.Group, func() error {
		var err error
		view, member, err = b.membership(ctx, &h)
		return err
	})
	if err != nil || h.MemberEpoch == -1 {
		out.MemberEpoch = -1
		return out, err
	}
	view = b.upkeep(ctx, view)
	// The first attempt decides on the group as membership and upkeep
	// left it (their own writes included); a race re-reads.
	known := &memberRead{view, member}
	err = b.groupLoop(ctx, h.Group, func() error {
		var err error
		out, err = b.reconcile(ctx, &h, member.Incarnation, known)
		known = nil
		return err
	})
	return out, err
}

type memberRead struct {
	v offsets.GroupView
	m offsets.Member
}

// groupLoop runs attempt until it succeeds or fails with something other
// than a lost race.
func (b *Broker) groupLoop(ctx context.Context, group string, attempt func() error) error {
	err := groupRetry.Do(ctx, isRace, func(int) error { return attempt() })
	if isRace(err) {
		return fmt.Errorf("%w: group %s: gave up after repeated races: %v", offsets.ErrUnavailable, group, err)
	}
	return err
}

func isRace(err error) bool {
	return errors.Is(err, offsets.ErrConditionFailed) || errors.Is(err, offsets.ErrConflict) || errors.Is(err, offsets.ErrThrottled)
}

// groupRetry bounds the group protocol's race loops.
var groupRetry = retry.Policy{Attempts: 16, Base: 2 * time.Millisecond, Max: 200 * time.Millisecond}

func cloneMeta(m offsets.GroupMeta) offsets.GroupMeta {
	c := m
	c.PartitionCounts = maps.Clone(m.PartitionCounts)
	c.FirstCounts = maps.Clone(m.FirstCounts)
	return c
}

func sortedTopics(ts []string) []string {
	out := slices.Clone(ts)
	slices.Sort(out)
	return slices.Compact(out)
}

func minusTPs(a, b []tp) []tp {
	in := make(map[tp]bool, len(b))
	for _, x := range b {
		in[x] = true
	}
	var out []tp
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// membership is step 1. A member writes only its own item; the group's
// meta is written only to mark that membership changed (once, however
// many members join or leave at the same moment: a join storm must not
// queue on one item) or that a partition count did.
func (b *Broker) membership(ctx context.Context, h *Heartbeat) (offsets.GroupView, offsets.Member, error) {
	now := b.now().UnixMilli()
	v, m, err := b.store.GroupMember(ctx, h.Group, h.MemberID)
	if err != nil {
		return v, m, err
	}
	if m.Version > 0 && m.Principal != h.Principal {
		// Another principal's member: it cannot heartbeat, leave or fence
		// it, and learns nothing about it (unless it is long dead, when
		// its id is free again).
		if h.MemberEpoch != 0 || m.Live(now) {
			return v, m, memberOfAnother(h)
		}
	}
	switch {
	case h.MemberEpoch == -1:
		if m.Version == 0 {
			return v, m, nil // not a member (any more): nothing to do
		}
		if err := b.store.WriteGroup(ctx, h.Group, offsets.GroupWrite{DeleteMembers: []offsets.Member{m}}); err != nil {
			return v, m, err
		}
		v, err = b.markChanged(ctx, h.Group, nil, nil)
		return v, m, err
	case h.MemberEpoch == 0:
		if !v.Exists {
			if v, err = b.createGroup(ctx, h.Group, h.Assignor, now); err != nil {
				return v, m, err
			}
		}
		if v.Meta.LiveClassicMembers(now) > 0 {
			return v, m, fmt.Errorf("%w: %s has members that assign partitions themselves (Kafka's classic protocol with a custom assignor); join it the same way, or use another group", offsets.ErrGroupProtocol, h.Group)
		}
		if m.Version == 0 && v.Meta.Members >= MaxGroupMembers {
			return v, m, fieldErr("member_id", "group %s already has %d members, the limit", h.Group, MaxGroupMembers)
		}
		timeout := h.SessionTimeout
		if timeout == 0 {
			timeout = DefaultSessionTimeout
		}
		// A rejoin replaces (and so fences) an earlier incarnation: what it
		// owned is stale from now on.
		m = offsets.Member{
			ID: h.MemberID, Incarnation: randomHex(8), Topics: sortedTopics(h.Topics), ClientID: h.ClientID, Principal: h.Principal,
			SessionTimeoutMs: int32(timeout.Milliseconds()), DeadlineMs: now + timeout.Milliseconds(), JoinedMs: now, Version: m.Version,
			InstanceID: h.InstanceID, InstanceMemberID: h.InstanceMemberID,
		}
		if err := b.store.WriteGroup(ctx, h.Group, offsets.GroupWrite{PutMembers: []offsets.Member{m}}); err != nil {
			return v, m, err
		}
		m.Version++
		v, err = b.markChanged(ctx, h.Group, &v, m.Topics)
		return v, m, err
	}
	if err := checkMember(h, m, now); err != nil {
		return v, m, err
	}
	if h.InstanceMemberID != "" && h.InstanceMemberID != m.InstanceMemberID {
		// Another process of the same static member took it over: it keeps
		// the member's epoch and assignment, so the group does not
		// rebalance.
		m.InstanceMemberID = h.InstanceMemberID
		m.DeadlineMs = now + int64(m.SessionTimeoutMs)
		if err := b.store.WriteGroup(ctx, h.Group, offsets.GroupWrite{PutMembers: []offsets.Member{m}}); err != nil {
			return v, m, err
		}
		m.Version++
	}
	if h.Topics != nil && !slices.Equal(sortedTopics(h.Topics), m.Topics) {
		m.Topics = sortedTopics(h.Topics)
		if err := b.store.WriteGroup(ctx, h.Group, offsets.GroupWrite{PutMembers: []offsets.Member{m}}); err != nil {
			return v, m, err
		}
		m.Version++
		v, err = b.markChanged(ctx, h.Group, &v, m.Topics)
		return v, m, err
	}
	if b.countsDiffer(ctx, v.Meta, m.Topics) {
		v, err = b.markChanged(ctx, h.Group, &v, m.Topics)
	}
	return v, m, err
}

// createGroup creates a group's meta (a no-op if a concurrent join did).
func (b *Broker) createGroup(ctx context.Context, group, assignor string, now int64) (offsets.GroupView, error) {
	if assignor == "" {
		assignor = AssignorUniform
	}
	meta := offsets.GroupMeta{Assignor: assignor, CreatedMs: now}
	err := b.store.WriteGroup(ctx, group, offsets.GroupWrite{Meta: &meta})
	if err != nil && !errors.Is(err, offsets.ErrConditionFailed) {
		return offsets.GroupView{}, err
	}
	return b.store.LoadGroupMeta(ctx, group)
}

// markChanged moves the group epoch past the installed assignment (if it
// is not already: then there is nothing to write, which is what keeps a
// burst of joins from contending on the meta) and records the partition
// counts of topics. v, when given, is the meta as already read.
func (b *Broker) markChanged(ctx context.Context, group string, v *offsets.GroupView, topics []string) (offsets.GroupView, error) {
	var out offsets.GroupView
	err := b.groupLoop(ctx, group, func() error {
		cur := v
		v = nil
		if cur == nil {
			fresh, err := b.store.LoadGroupMeta(ctx, group)
			if err != nil {
				return err
			}
			cur = &fresh
		}
		out = *cur
		if !cur.Exists {
			return nil // deleted meanwhile
		}
		meta := cloneMeta(cur.Meta)
		changed := b.updateCounts(ctx, &meta, topics)
		if meta.Epoch <= meta.AssignmentEpoch {
			meta.Epoch = meta.AssignmentEpoch + 1
			changed = true
		}
		if !changed {
			return nil
		}
		if err := b.store.WriteGroup(ctx, group, offsets.GroupWrite{Meta: &meta, MetaVersion: cur.MetaVersion}); err != nil {
			return err
		}
		out.Meta, out.MetaVersion = meta, cur.MetaVersion+1
		return nil
	})
	return out, err
}

// countsDiffer reports whether any of topics has another partition count
// than meta recorded.
func (b *Broker) countsDiffer(ctx context.Context, meta offsets.GroupMeta, topics []string) bool {
	m := cloneMeta(meta)
	return b.updateCounts(ctx, &m, topics)
}

// memberOfAnother is the answer to a request naming another principal's
// member: the same as for a member that does not exist.
func memberOfAnother(h *Heartbeat) error {
	if h.MemberEpoch == 0 {
		return &FieldError{Field: "member_id", Reason: fmt.Sprintf("%q is taken; choose another member id", h.MemberID), Err: offsets.ErrUnknownMember}
	}
	return fmt.Errorf("%w: %s is not a member of %s; rejoin with member_epoch 0", offsets.ErrUnknownMember, h.MemberID, h.Group)
}

// checkMember refuses a heartbeat of a member that is gone, expired or on
// an epoch it was never given.
func checkMember(h *Heartbeat, m offsets.Member, now int64) error {
	switch {
	case m.Version == 0:
		return fmt.Errorf("%w: %s is not a member of %s; rejoin with member_epoch 0", offsets.ErrUnknownMember, h.MemberID, h.Group)
	case !m.Live(now):
		return fmt.Errorf("%w: %s's session expired; rejoin with member_epoch 0", offsets.ErrUnknownMember, h.MemberID)
	case h.MemberEpoch != m.Epoch && h.MemberEpoch != m.PreviousEpoch:
		return fmt.Errorf("%w: member %s is at epoch %d, the heartbeat carries %d; rejoin with member_epoch 0", offsets.ErrStaleMemberEpoch, h.MemberID, m.Epoch, h.MemberEpoch)
	}
	return nil
}

// updateCounts records the partition counts of topics (as this broker
// knows them, at most a topic-cache age old) in meta, reporting whether
// one changed. Topics that do not exist count 0.
func (b *Broker) updateCounts(ctx context.Context, meta *offsets.GroupMeta, topics []string) bool {
	changed := false
	for _, name := range topics {
		n := int32(0)
		if t, err := b.Topic(ctx, name); err == nil {
			n = t.Partitions
		}
		if old, ok := meta.PartitionCounts[name]; ok && old == n {
			continue
		}
		if meta.PartitionCounts == nil {
			meta.PartitionCounts = map[string]int32{}
		}
		meta.PartitionCounts[name] = n
		if _, ok := meta.FirstCounts[name]; !ok && n > 0 {
			if meta.FirstCounts == nil {
				meta.FirstCounts = map[string]int32{}
			}
			meta.FirstCounts[name] = n
		}
		changed = true
	}
	return changed
}

// upkeep is step 2: expire members and compute assignments when due. It
// is best effort (a failure leaves the work to the next heartbeat) and
// returns the group as it stands after it.
func (b *Broker) upkeep(ctx context.Context, v offsets.GroupView) offsets.GroupView {
	now := b.now().UnixMilli()
	if v.Exists && now >= v.Meta.ScanAfterMs {
		if nv, err := b.expireMembers(ctx, v, now); err != nil {
			b.log.Debug("expiring group members; the next heartbeat retries", "group", v.Name, "err", err)
		} else {
			v = nv
		}
	}
	if v.Exists && v.Meta.Epoch > v.Meta.AssignmentEpoch && now >= v.Meta.AssigningUntilMs {
		if nv, err := b.computeAssignment(ctx, v, now); err != nil {
			b.log.Debug("computing a group assignment; the next heartbeat retries", "group", v.Name, "err", err)
		} else {
			v = nv
		}
	}
	return v
}

// claim writes meta with a claim (set by mark) if meta is still as read,
// so concurrent heartbeats leave the work to this one.
func (b *Broker) claim(ctx context.Context, v offsets.GroupView, mark func(*offsets.GroupMeta)) (offsets.GroupView, error) {
	meta := cloneMeta(v.Meta)
	mark(&meta)
	if err := b.store.WriteGroup(ctx, v.Name, offsets.GroupWrite{Meta: &meta, MetaVersion: v.MetaVersion}); err != nil {
		return v, err
	}
	v.Meta, v.MetaVersion = meta, v.MetaVersion+1
	return v, nil
}

// scanEvery bounds how long a group goes without a scan for ended
// sessions and for assignment targets of members that are gone.
const scanEvery = 30 * time.Second

// expireMembers deletes members whose session ended (each deletion
// conditional on the member not having renewed meanwhile), marks the group
// changed if any went or the installed assignment names a member that is
// gone, and notes when the next scan is due.
func (b *Broker) expireMembers(ctx context.Context, v offsets.GroupView, now int64) (offsets.GroupView, error) {
	v, err := b.claim(ctx, v, func(m *offsets.GroupMeta) { m.ScanAfterMs = now + scanClaim.Milliseconds() })
	if err != nil {
		return v, err
	}
	members, err := b.store.GroupMembers(ctx, v.Name)
	if err != nil {
		return v, err
	}
	targets, err := b.assignment(ctx, v.Name, v.Meta.Assignment)
	if err != nil {
		return v, err
	}
	var dead []offsets.Member
	live := map[string]bool{}
	next := now + scanEvery.Milliseconds()
	for _, m := range members {
		if m.Live(now) {
			live[m.ID] = true
			next = min(next, m.DeadlineMs)
		} else {
			dead = append(dead, m)
		}
	}
	next = max(next, now+100)
	changed := false
	for start := 0; start < len(dead); start += offsets.MaxWriteOps {
		chunk := dead[start:min(start+offsets.MaxWriteOps, len(dead))]
		err := b.store.WriteGroup(ctx, v.Name, offsets.GroupWrite{DeleteMembers: chunk})
		if errors.Is(err, offsets.ErrConditionFailed) {
			continue // one renewed (or went) meanwhile: the next scan sees to the rest
		}
		if err != nil {
			return v, err
		}
		changed = true
	}
	for id := range targets {
		changed = changed || !live[id]
	}
	err = b.groupLoop(ctx, v.Name, func() error {
		cur, err := b.store.LoadGroupMeta(ctx, v.Name)
		if err != nil || !cur.Exists {
			return err
		}
		meta := cloneMeta(cur.Meta)
		meta.ScanAfterMs = next
		if changed && meta.Epoch <= meta.AssignmentEpoch {
			meta.Epoch = meta.AssignmentEpoch + 1
		}
		if err := b.store.WriteGroup(ctx, v.Name, offsets.GroupWrite{Meta: &meta, MetaVersion: cur.MetaVersion}); err != nil {
			return err
		}
		v.Meta, v.MetaVersion = meta, cur.MetaVersion+1
		return nil
	})
	return v, err
}

// computeAssignment computes targets for the current members with the
// group's assignor, stores them and installs them, unless a newer one was
// installed meanwhile. Targets of the installed assignment guide the
// sticky assignor.
func (b *Broker) computeAssignment(ctx context.Context, v offsets.GroupView, now int64) (offsets.GroupView, error) {
	v, err := b.claim(ctx, v, func(m *offsets.GroupMeta) { m.AssigningUntilMs = now + assignClaim.Milliseconds() })
	if err != nil {
		return v, err
	}
	members, err := b.store.GroupMembers(ctx, v.Name)
	if err != nil {
		return v, err
	}
	prev, err := b.assignment(ctx, v.Name, v.Meta.Assignment)
	if err != nil {
		return v, err
	}
	var subs []memberSub
	for _, m := range offsets.LiveMembers(members, now) {
		subs = append(subs, memberSub{id: m.ID, topics: m.Topics})
	}
	targets := assign(v.Meta.Assignor, subs, v.Meta.PartitionCounts, prev)
	epoch := v.Meta.Epoch
	ref, err := b.store.WriteAssignment(ctx, v.Name, randomHex(6), epoch, targets)
	if err != nil {
		return v, err
	}
	var replaced offsets.AssignmentRef
	err = b.groupLoop(ctx, v.Name, func() error {
		cur, err := b.store.LoadGroupMeta(ctx, v.Name)
		if err != nil {
			return err
		}
		if cur.Meta.AssignmentEpoch >= epoch {
			replaced = ref // a newer one is installed: ours is garbage
			return nil
		}
		meta := cloneMeta(cur.Meta)
		replaced = meta.Assignment
		meta.Assignment, meta.AssignmentEpoch, meta.AssigningUntilMs = ref, epoch, 0
		meta.Members = int32(len(subs))
		if err := b.store.WriteGroup(ctx, v.Name, offsets.GroupWrite{Meta: &meta, MetaVersion: cur.MetaVersion}); err != nil {
			return err
		}
		v.Meta, v.MetaVersion = meta, cur.MetaVersion+1
		return nil
	})
	if err != nil {
		return v, err
	}
	if replaced.Tag != "" {
		// Readers of the replaced assignment have it cached or re-read the
		// meta; deleting it is cleanup, and a failure only leaves garbage
		// the group's deletion removes.
		if err := b.store.DeleteAssignment(ctx, v.Name, replaced); err != nil {
			b.log.Debug("deleting a replaced assignment", "group", v.Name, "err", err)
		}
	}
	return v, nil
}

// assignment returns an installed assignment's targets, cached (they never
// change).
func (b *Broker) assignment(ctx context.Context, group string, ref offsets.AssignmentRef) (map[string][]offsets.TopicPartitions, error) {
	if ref.Tag == "" {
		return map[string][]offsets.TopicPartitions{}, nil
	}
	key := group + "/" + ref.Tag
	if t, ok := b.assignments.get(key); ok {
		return t, nil
	}
	t, err := b.store.ReadAssignment(ctx, group, ref)
	if err != nil {
		return nil, err
	}
	size := int64(64)
	for id, tps := range t {
		size += int64(len(id)) + 32
		for _, x := range tps {
			size += int64(len(x.Topic)) + 32 + 4*int64(len(x.Partitions))
		}
	}
	b.assignments.add(key, t, size)
	return t, nil
}

// reconcile is step 3 for one member. known, when set, is the group and
// member as last read or written; otherwise they are read.
func (b *Broker) reconcile(ctx context.Context, h *Heartbeat, incarnation string, known *memberRead) (HeartbeatResult, error) {
	out := HeartbeatResult{MemberID: h.MemberID}
	now := b.now().UnixMilli()
	var v offsets.GroupView
	var m offsets.Member
	if known != nil {
		v, m = known.v, known.m
	} else {
		var err error
		if v, m, err = b.store.GroupMember(ctx, h.Group, h.MemberID); err != nil {
			return out, err
		}
	}
	if m.Version == 0 || m.Incarnation != incarnation || m.Principal != h.Principal {
		return out, fmt.Errorf("%w: %s was replaced or removed during its heartbeat; rejoin with member_epoch 0", offsets.ErrUnknownMember, h.MemberID)
	}
	if h.MemberEpoch != 0 {
		if err := checkMember(h, m, now); err != nil {
			return out, err
		}
	}
	was := m
	owned := toTPs(m.Owned)
	if h.Owned != nil && h.MemberEpoch != 0 {
		owned = minusTPs(owned, minusTPs(owned, toTPs(h.Owned))) // released what it no longer reports
	}
	targets, err := b.assignment(ctx, h.Group, v.Meta.Assignment)
	if err != nil {
		return out, err
	}
	if _, in := targets[m.ID]; !in && v.Meta.Epoch <= v.Meta.AssignmentEpoch {
		// Joined after the installed assignment was computed, and the mark
		// of its join was absorbed by one already pending: mark again.
		if v, err = b.markChanged(ctx, h.Group, &v, nil); err != nil {
			return out, err
		}
	}
	target := toTPs(targets[m.ID])
	revoke := minusTPs(owned, target)
	m.Owned = fromTPs(owned)
	timeout := h.SessionTimeout
	if timeout == 0 {
		timeout = time.Duration(m.SessionTimeoutMs) * time.Millisecond
	}
	m.SessionTimeoutMs, m.DeadlineMs = int32(timeout.Milliseconds()), now+timeout.Milliseconds()
	want := minusTPs(target, owned)
	if len(revoke) == 0 && v.Meta.AssignmentEpoch > 0 && m.Epoch != v.Meta.AssignmentEpoch {
		m.PreviousEpoch, m.Epoch = m.Epoch, v.Meta.AssignmentEpoch
	}
	steady := len(want) == 0 && m.Epoch == was.Epoch && m.SessionTimeoutMs == was.SessionTimeoutMs && slices.EqualFunc(m.Owned, was.Owned, func(a, b offsets.TopicPartitions) bool {
		return a.Topic == b.Topic && slices.Equal(a.Partitions, b.Partitions)
	})
	switch {
	case steady && was.DeadlineMs-now > timeout.Milliseconds()*3/4:
		m = was // nothing to change, and the session has most of its time left
	case len(revoke) == 0 && v.Meta.AssignmentEpoch > 0:
		if err := b.acquire(ctx, h.Group, &m, want, now); err != nil {
			return out, err
		}
	default:
		if err := b.store.WriteGroup(ctx, h.Group, offsets.GroupWrite{PutMembers: []offsets.Member{m}}); err != nil {
			return out, err
		}
	}
	out.MemberEpoch = m.Epoch
	out.HeartbeatInterval = heartbeatInterval(timeout)
	out.FirstCounts = v.Meta.FirstCounts
	out.Assignment = fromTPs(minusTPs(toTPs(m.Owned), revoke))
	after, before := toTPs(out.Assignment), toTPs(was.Owned)
	out.Changed = len(minusTPs(after, before)) > 0 || len(minusTPs(before, after)) > 0
	if out.Assignment == nil {
		out.Assignment = []offsets.TopicPartitions{}
	}
	return out, nil
}

// acquire writes m (its deadline renewed) together with the partitions of
// want that no live member holds: their owner items, conditional on what
// was read, and on the members they are taken over from. m.Owned and
// m.Version follow what was written.
func (b *Broker) acquire(ctx context.Context, group string, m *offsets.Member, want []tp, now int64) error {
	slices.SortFunc(want, cmpTP)
	want = want[:min(len(want), maxAcquire)]
	var free []offsets.OwnerState
	if len(want) > 0 {
		tps := make([]offsets.TopicPartition, len(want))
		for i, x := range want {
			tps[i] = offsets.TopicPartition{Topic: x.topic, Partition: x.p}
		}
		states, err := b.store.PartitionOwners(ctx, group, tps)
		if err != nil {
			return err
		}
		for _, st := range states {
			if !st.HeldBy(m.ID, now) {
				free = append(free, st)
			}
		}
	}
	for first := true; first || len(free) > 0; first = false {
		chunk := free[:min(len(free), ownersPerWrite)]
		free = free[len(chunk):]
		next := *m
		owned := toTPs(next.Owned)
		w := offsets.GroupWrite{}
		checked := map[string]bool{}
		for _, st := range chunk {
			owned = append(owned, tp{st.Topic, st.Partition})
			w.PutOwners = append(w.PutOwners, offsets.OwnerPut{TopicPartition: st.TopicPartition, Owner: offsets.PartitionOwner{Member: m.ID, Incarnation: m.Incarnation}, Expect: st.Version})
			if st.Version > 0 && st.Owner.Member != m.ID && !checked[st.Owner.Member] {
				// Taken over from a member that left, expired or released
				// it: only if that member did not change meanwhile.
				checked[st.Owner.Member] = true
				w.CheckMembers = append(w.CheckMembers, offsets.Member{ID: st.Owner.Member, Version: st.Holder.Version})
			}
		}
		next.Owned = fromTPs(owned)
		w.PutMembers = []offsets.Member{next}
		if err := b.store.WriteGroup(ctx, group, w); err != nil {
			if !first && errors.Is(err, offsets.ErrConditionFailed) {
				return nil // what was written stands; the rest waits for the next heartbeat
			}
			return err
		}
		next.Version++
		*m = next
	}
	return nil
}

func heartbeatInterval(session time.Duration) time.Duration {
	return max(min(session/3, 5*time.Second), 100*time.Millisecond)
}

// CommitOffsets stores a group's offsets. With a member id the member's
// epoch and ownership are checked (zombies are fenced); without one the
// group must be empty. Topics must exist and partitions be in range.
func (b *Broker) CommitOffsets(ctx context.Context, group, memberID string, epoch int32, offs []offsets.CommittedOffset) error {
	return b.CommitOffsetsAs(ctx, "", group, memberID, epoch, offs)
}

// CommitOffsetsAs is CommitOffsets by an authenticated principal: a member
// id must be one of that principal's members. More offsets than one
// transaction holds are committed in several; each offset lands whole.
func (b *Broker) CommitOffsetsAs(ctx context.Context, principal, group, memberID string, epoch int32, offs []offsets.CommittedOffset) error {
	if memberID != "" {
		if err := offsets.ValidateMemberID(memberID); err != nil {
			return err
		}
	}
	for i := range offs {
		o := &offs[i]
		t, err := b.topicPartition(ctx, o.Topic, o.Partition)
		if err != nil {
			return &FieldError{Field: fmt.Sprintf("offsets[%d]", i), Reason: err.Error(), Err: err}
		}
		o.TopicID = t.ID
	}
	for len(offs) > 0 {
		n := min(len(offs), MaxCommitsPerWrite)
		if err := b.store.CommitOffsets(ctx, group, memberID, principal, epoch, offs[:n]); err != nil {
			return err
		}
		offs = offs[n:]
	}
	return nil
}

// MaxCommitsPerWrite is how many offsets one commit transaction holds
// (the member or meta item it is conditioned on takes a slot).
const MaxCommitsPerWrite = offsets.MaxWriteOps - 2

// CommittedOffsets returns a group's committed offsets for topics that
// still exist (a deleted and re-created topic does not inherit them).
// Topics are looked up in the broker's topic cache.
func (b *Broker) CommittedOffsets(ctx context.Context, group, topic string) ([]offsets.CommittedOffset, error) {
	all, err := b.store.FetchOffsets(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	var out []offsets.CommittedOffset
	for _, o := range all {
		id, ok := ids[o.Topic]
		if !ok {
			t, err := b.Topic(ctx, o.Topic)
			switch {
			case errors.Is(err, offsets.ErrUnknownTopic):
			case err != nil:
				return nil, err
			default:
				id = t.ID
			}
			ids[o.Topic] = id
		}
		if id != "" && (o.TopicID == "" || o.TopicID == id) {
			out = append(out, o)
		}
	}
	return out, nil
}

// Poll is heartbeat + commit of the previous positions + fetch, in one
// round trip (at-least-once, like Kafka's poll with auto-commit).
type Poll struct {
	Heartbeat
	// Positions are the next offsets the member will consume, per
	// partition it owned: committed first (unless NoCommit), then used as
	// fetch positions for partitions it still owns.
	Positions []offsets.CommittedOffset
	NoCommit  bool
	// AutoOffsetReset ("earliest" or "latest") applies to partitions with
	// no position and no commit, and to positions out of range.
	AutoOffsetReset string
	MaxRecords      int
	MaxBytes        int
	Wait            time.Duration
	// Authorize, when set, is asked about every topic the poll would read
	// (what the member is assigned now); an error fails the poll.
	Authorize func(topic string) error
}

// PolledRecord is a record with its partition.
type PolledRecord struct {
	Topic     string
	Partition int32
	segments.Record
}

// PollResult answers a poll.
type PollResult struct {
	HeartbeatResult
	Records []PolledRecord
	// Positions holds the next offset of every assigned partition.
	Positions []offsets.CommittedOffset
	// CommitErr is why the commit of the previous positions failed, if it did.
	CommitErr error
}

// Poll runs a poll.
func (b *Broker) Poll(ctx context.Context, p Poll) (PollResult, error) {
	var res PollResult
	if p.AutoOffsetReset == "" {
		p.AutoOffsetReset = "latest"
	}
	if p.AutoOffsetReset != "earliest" && p.AutoOffsetReset != "latest" {
		return res, fieldErr("auto_offset_reset", "%q: use earliest or latest", p.AutoOffsetReset)
	}
	// Committed offsets are read only if a position is missing or the
	// positions are to be committed: then only those that moved are.
	var committed map[tp]offsets.CommittedOffset
	readCommitted := func() error {
		if committed != nil {
			return nil
		}
		cos, err := b.CommittedOffsets(ctx, p.Group, "")
		if err != nil {
			return err
		}
		committed = make(map[tp]offsets.CommittedOffset, len(cos))
		for _, o := range cos {
			committed[tp{o.Topic, o.Partition}] = o
		}
		return nil
	}
	if !p.NoCommit && len(p.Positions) > 0 && p.MemberEpoch > 0 {
		res.CommitErr = readCommitted()
		if res.CommitErr == nil {
			var moved []offsets.CommittedOffset
			for _, o := range p.Positions {
				if c, ok := committed[tp{o.Topic, o.Partition}]; !ok || c.Offset != o.Offset || c.Metadata != o.Metadata {
					moved = append(moved, o)
				}
			}
			if len(moved) > 0 {
				res.CommitErr = b.CommitOffsetsAs(ctx, p.Principal, p.Group, p.MemberID, p.MemberEpoch, moved)
			}
		}
	}
	a, err := b.Heartbeat(ctx, p.Heartbeat)
	if err != nil {
		return res, err
	}
	res.HeartbeatResult = a
	if a.MemberEpoch < 0 || len(a.Assignment) == 0 {
		return res, nil
	}
	if p.Authorize != nil {
		for _, t := range a.Assignment {
			if err := p.Authorize(t.Topic); err != nil {
				return res, err
			}
		}
	}
	given := map[tp]int64{}
	for _, o := range p.Positions {
		given[tp{o.Topic, o.Partition}] = o.Offset
	}
	var reqs []FetchRequest
	for _, x := range toTPs(a.Assignment) {
		off, ok := given[x]
		if !ok {
			if err := readCommitted(); err != nil {
				return res, err
			}
			var c offsets.CommittedOffset
			if c, ok = committed[x]; ok {
				off = c.Offset
			}
		}
		if !ok {
			off = -1 // resolve by the reset policy below
		}
		reqs = append(reqs, FetchRequest{Topic: x.topic, Partition: x.p, Offset: off})
	}
	for i := range reqs {
		if reqs[i].Offset >= 0 {
			continue
		}
		policy := p.AutoOffsetReset
		if first, ok := a.FirstCounts[reqs[i].Topic]; ok && reqs[i].Partition >= first {
			policy = "earliest" // added after the group subscribed: nothing in it was meant to be skipped
		}
		if reqs[i].Offset, err = b.resetOffset(ctx, reqs[i].Topic, reqs[i].Partition, policy); err != nil {
			return res, err
		}
	}
	// Long polls stop at the heartbeat interval, so rebalances keep moving.
	wait := min(p.Wait, a.HeartbeatInterval)
	fetched := b.FetchMany(ctx, reqs, p.MaxRecords, p.MaxBytes, wait)
	for i, f := range fetched {
		next := f.NextOffset
		var oor *OffsetOutOfRangeError
		switch {
		case errors.As(f.Err, &oor):
			next = oor.LogEnd
			if p.AutoOffsetReset == "earliest" {
				next = oor.LogStart
			}
		case f.Err != nil:
			return res, f.Err
		}
		for _, r := range f.Records {
			res.Records = append(res.Records, PolledRecord{Topic: reqs[i].Topic, Partition: reqs[i].Partition, Record: r})
		}
		res.Positions = append(res.Positions, offsets.CommittedOffset{Topic: reqs[i].Topic, Partition: reqs[i].Partition, Offset: next})
	}
	return res, nil
}

func (b *Broker) resetOffset(ctx context.Context, topic string, p int32, policy string) (int64, error) {
	st, err := b.Partitions(ctx, topic, p)
	if err != nil {
		return 0, err
	}
	if policy == "earliest" {
		return st[0].LogStart, nil
	}
	return st[0].LogEnd, nil
}

// ResetOffsets sets an empty group's committed offsets for a topic's
// partitions (all if none are named): to the earliest or latest offset, the
// first offset at or after a timestamp, or a given offset (clamped into the
// log, as Kafka's tools do).
func (b *Broker) ResetOffsets(ctx context.Context, group, topic string, parts []int32, to string, value int64) ([]offsets.CommittedOffset, error) {
	t, err := b.Topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		for p := range t.Partitions {
			parts = append(parts, p)
		}
	}
	states, err := b.Partitions(ctx, topic, parts...)
	if err != nil {
		return nil, err
	}
	out := make([]offsets.CommittedOffset, len(parts))
	for i, st := range states {
		off := st.LogEnd
		switch to {
		case "earliest":
			off = st.LogStart
		case "latest":
		case "offset":
			off = min(max(value, st.LogStart), st.LogEnd)
		case "timestamp":
			if off, _, _, _, err = b.OffsetForTimestamp(ctx, topic, st.Partition, value); err != nil {
				return nil, err
			}
		default:
			return nil, fieldErr("to", "%q: use earliest, latest, timestamp or offset", to)
		}
		out[i] = offsets.CommittedOffset{Topic: topic, Partition: st.Partition, Offset: off, TopicID: t.ID, Metadata: "reset to " + to}
	}
	if err := b.store.CommitOffsets(ctx, group, "", "", 0, out); err != nil {
		return nil, err
	}
	return out, nil
}

// GroupState names where a group stands.
const (
	GroupEmpty       = "empty"
	GroupStable      = "stable"
	GroupReconciling = "reconciling"
)

// MemberInfo describes a member for admin views.
type MemberInfo struct {
	ID               string
	Epoch            int32
	Topics           []string
	Assignment       []offsets.TopicPartitions // owned now
	Target           []offsets.TopicPartitions
	SessionTimeoutMs int32
	DeadlineMs       int64
	ClientID         string
	Principal        string
	// InstanceID and InstanceMemberID: see Heartbeat.
	InstanceID, InstanceMemberID string
}

// GroupInfo describes a group.
type GroupInfo struct {
	Name            string
	State           string
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []MemberInfo // live members, by id
}

// DescribeGroup returns a group's state, members and assignments.
func (b *Broker) DescribeGroup(ctx context.Context, group string) (GroupInfo, error) {
	v, err := b.store.LoadGroupMeta(ctx, group)
	if err != nil {
		return GroupInfo{}, err
	}
	if !v.Exists {
		return GroupInfo{}, fmt.Errorf("%w: %s", offsets.ErrUnknownGroup, group)
	}
	members, err := b.store.GroupMembers(ctx, group)
	if err != nil {
		return GroupInfo{}, err
	}
	targets, err := b.assignment(ctx, group, v.Meta.Assignment)
	if err != nil {
		return GroupInfo{}, err
	}
	now := b.now().UnixMilli()
	info := GroupInfo{Name: group, Epoch: v.Meta.Epoch, AssignmentEpoch: v.Meta.AssignmentEpoch, Assignor: v.Meta.Assignor, State: GroupStable}
	if v.Meta.Epoch != v.Meta.AssignmentEpoch {
		info.State = GroupReconciling
	}
	for _, m := range offsets.LiveMembers(members, now) {
		target := targets[m.ID]
		info.Members = append(info.Members, MemberInfo{
			ID: m.ID, Epoch: m.Epoch, Topics: m.Topics, Assignment: m.Owned, Target: target,
			SessionTimeoutMs: m.SessionTimeoutMs, DeadlineMs: m.DeadlineMs, ClientID: m.ClientID, Principal: m.Principal,
			InstanceID: m.InstanceID, InstanceMemberID: m.InstanceMemberID,
		})
		if m.Epoch != v.Meta.AssignmentEpoch || !slices.Equal(toTPs(m.Owned), toTPs(target)) {
			info.State = GroupReconciling
		}
	}
	if len(info.Members) == 0 {
		info.State = GroupEmpty
	}
	return info, nil
}

// LiveMemberCount is how many members of a broker-assigned group are live
// (0 for a group that does not exist).
func (b *Broker) LiveMemberCount(ctx context.Context, group string) (int, error) {
	members, err := b.store.GroupMembers(ctx, group)
	if err != nil {
		return 0, err
	}
	return len(offsets.LiveMembers(members, b.now().UnixMilli())), nil
}

// DeleteCommittedOffsets removes a group's committed offsets of some
// partitions; the caller has checked that no live member consumes them.
func (b *Broker) DeleteCommittedOffsets(ctx context.Context, group string, tps []offsets.TopicPartition) error {
	return b.store.DeleteCommittedOffsets(ctx, group, tps)
}

// ListGroups lists group names.
func (b *Broker) ListGroups(ctx context.Context, after string, limit int) ([]string, string, error) {
	return b.store.ListGroups(ctx, after, limit)
}

// DeleteGroup deletes an empty group and its offsets.
func (b *Broker) DeleteGroup(ctx context.Context, group string) error {
	return b.store.DeleteGroup(ctx, group)
}

// PartitionLag is a group's lag on one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Committed *int64
	LogStart  int64
	LogEnd    int64
	Lag       int64
	MemberID  string // the owner now, if any
	// MemberPrincipal is the owner's principal.
	MemberPrincipal string
	TimeLagMs       int64 // age of the oldest unconsumed record
}

// GroupLag computes a group's lag on every partition of the topics its
// members subscribe to or it has committed offsets for. Lag counts from
// the committed offset (or the log start, without one) to the log end;
// time lag is how old the first unconsumed record is.
func (b *Broker) GroupLag(ctx context.Context, group string) ([]PartitionLag, error) {
	v, err := b.store.LoadGroupMeta(ctx, group)
	if err != nil {
		return nil, err
	}
	cos, err := b.CommittedOffsets(ctx, group, "")
	if err != nil {
		return nil, err
	}
	if !v.Exists && len(cos) == 0 {
		return nil, fmt.Errorf("%w: %s", offsets.ErrUnknownGroup, group)
	}
	members, err := b.store.GroupMembers(ctx, group)
	if err != nil {
		return nil, err
	}
	committed := map[tp]int64{}
	names := map[string]bool{}
	for _, o := range cos {
		committed[tp{o.Topic, o.Partition}] = o.Offset
		names[o.Topic] = true
	}
	owner := map[tp]offsets.Member{}
	now := b.now().UnixMilli()
	for _, m := range offsets.LiveMembers(members, now) {
		for _, t := range m.Topics {
			names[t] = true
		}
		for _, x := range toTPs(m.Owned) {
			owner[x] = m
		}
	}
	topics, err := b.store.Topics(ctx, slices.Sorted(maps.Keys(names)))
	if err != nil {
		return nil, err
	}
	var out []PartitionLag
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		t := topics[name]
		states, err := b.store.Partitions(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, st := range states {
			x := tp{name, st.Partition}
			l := PartitionLag{Topic: name, Partition: st.Partition, LogStart: st.LogStart, LogEnd: st.LogEnd, MemberID: owner[x].ID, MemberPrincipal: owner[x].Principal}
			from := st.LogStart
			if c, ok := committed[x]; ok {
				l.Committed = &c
				from = max(c, st.LogStart)
			}
			l.Lag = max(st.LogEnd-from, 0)
			if l.Lag > 0 {
				res, err := b.fetch(ctx, t, FetchRequest{Topic: name, Partition: st.Partition, Offset: from, MaxRecords: 1})
				if err == nil && len(res.Records) > 0 {
					l.TimeLagMs = max(now-res.Records[0].Timestamp, 0)
				}
			}
			out = append(out, l)
		}
	}
	return out, nil
}
