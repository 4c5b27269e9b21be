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
	// MaxGroupMembers keeps a group's state item well under DynamoDB's
	// 400 KB and a heartbeat's expiry deletions within one transaction.
	MaxGroupMembers = 90
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
		var raw [12]byte
		_, _ = rand.Read(raw[:])
		h.MemberID = "m-" + hex.EncodeToString(raw[:])
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

// Heartbeat runs one heartbeat: it expires members whose sessions ended,
// applies the request, recomputes targets when the group epoch moved, and
// reconciles the member: partitions it must give up are withheld (it keeps
// owning them until it heartbeats without them), partitions of its target
// are handed over only once no one else owns them, and its epoch moves to
// the assignment epoch when it has nothing left to revoke. All of it is one
// conditional write of the group state, retried on races.
func (b *Broker) Heartbeat(ctx context.Context, h Heartbeat) (HeartbeatResult, error) {
	if err := b.validateHeartbeat(&h); err != nil {
		return HeartbeatResult{}, err
	}
	var out HeartbeatResult
	err := b.groupLoop(ctx, h.Group, func(g offsets.Group) (offsets.GroupChange, bool, error) {
		topics, err := b.subscribedTopics(ctx, g, h.Topics)
		if err != nil {
			return offsets.GroupChange{}, false, err
		}
		var ch offsets.GroupChange
		out, ch, err = decideHeartbeat(g, h, topics, b.now().UnixMilli())
		if h.MemberEpoch == -1 && !g.Exists {
			return ch, false, err // leaving a group that does not exist: nothing to write
		}
		return ch, true, err
	})
	return out, err
}

// groupRetry bounds the group protocol's race loop.
var groupRetry = retry.Policy{Attempts: 16, Base: 2 * time.Millisecond, Max: 200 * time.Millisecond}

// groupLoop loads a group, lets decide compute a change, and saves it,
// retrying lost races with a fresh load.
func (b *Broker) groupLoop(ctx context.Context, group string, decide func(offsets.Group) (offsets.GroupChange, bool, error)) error {
	var last error
	for attempt := 0; attempt < groupRetry.Attempts; attempt++ {
		if attempt > 0 {
			if err := groupRetry.Sleep(ctx, attempt); err != nil {
				return err
			}
		}
		g, err := b.store.LoadGroup(ctx, group)
		if err != nil {
			return err
		}
		ch, write, err := decide(g)
		if err != nil || !write {
			return err
		}
		err = b.store.SaveGroup(ctx, g, ch)
		if err == nil {
			return nil
		}
		if !errors.Is(err, offsets.ErrConditionFailed) && !errors.Is(err, offsets.ErrConflict) && !errors.Is(err, offsets.ErrThrottled) {
			return err
		}
		last = err
	}
	return fmt.Errorf("%w: group %s: gave up after repeated races: %v", offsets.ErrUnavailable, group, last)
}

// subscribedTopics reads, fresh, every topic the group's members (and the
// request) subscribe to, so partition increases reach the group on its
// next heartbeat.
func (b *Broker) subscribedTopics(ctx context.Context, g offsets.Group, extra []string) (map[string]offsets.Topic, error) {
	names := map[string]bool{}
	for _, m := range g.Meta.Members {
		for _, t := range m.Topics {
			names[t] = true
		}
	}
	for _, t := range extra {
		names[t] = true
	}
	return b.store.Topics(ctx, slices.Sorted(maps.Keys(names)))
}

func heartbeatInterval(session time.Duration) time.Duration {
	return max(min(session/3, 5*time.Second), 100*time.Millisecond)
}

func cloneMeta(m offsets.GroupMeta) offsets.GroupMeta {
	c := m
	c.Members = make(map[string]*offsets.GroupMember, len(m.Members))
	for id, gm := range m.Members {
		x := *gm
		x.Topics = slices.Clone(gm.Topics)
		c.Members[id] = &x
	}
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
	var out []tp
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// decideHeartbeat is the group protocol as a pure function of the stored
// group, the request, the subscribed topics and the clock.
func decideHeartbeat(g offsets.Group, h Heartbeat, topics map[string]offsets.Topic, nowMs int64) (HeartbeatResult, offsets.GroupChange, error) {
	meta := cloneMeta(g.Meta)
	changed := !g.Exists
	if !g.Exists {
		meta = offsets.GroupMeta{Assignor: AssignorUniform, CreatedMs: nowMs, Members: map[string]*offsets.GroupMember{}}
		if h.Assignor != "" {
			meta.Assignor = h.Assignor
		}
	}
	var ch offsets.GroupChange
	out := HeartbeatResult{MemberID: h.MemberID}

	// Expire members whose sessions ended (lazily: no timers needed).
	for _, id := range slices.Sorted(maps.Keys(meta.Members)) {
		s, ok := g.Sessions[id]
		if ok && s.Live(nowMs) {
			continue
		}
		if id == h.MemberID && h.MemberEpoch > 0 {
			return out, ch, fmt.Errorf("%w: %s's session expired; rejoin with member_epoch 0", offsets.ErrUnknownMember, id)
		}
		delete(meta.Members, id)
		meta.Epoch++
		changed = true
		// The caller's own expired session is rewritten (a rejoin) or
		// deleted (a leave) below: one op per item and write.
		if ok && id != h.MemberID {
			ch.DeleteSessions = append(ch.DeleteSessions, s)
		}
	}

	sess, hadSession := g.Sessions[h.MemberID]
	switch {
	case h.MemberEpoch == -1:
		if _, ok := meta.Members[h.MemberID]; ok {
			delete(meta.Members, h.MemberID)
			meta.Epoch++
			changed = true
		}
		if hadSession {
			ch.DeleteSessions = append(ch.DeleteSessions, sess)
		}
		out.MemberEpoch = -1
	case h.MemberEpoch == 0:
		if len(meta.Members) >= MaxGroupMembers && meta.Members[h.MemberID] == nil {
			return out, ch, fieldErr("member_id", "group %s already has %d members, the limit", g.Name, MaxGroupMembers)
		}
		if len(meta.Members) == 0 && h.Assignor != "" {
			meta.Assignor = h.Assignor
		}
		// A rejoin with epoch 0 replaces (and so fences) an earlier incarnation.
		meta.Members[h.MemberID] = &offsets.GroupMember{Topics: sortedTopics(h.Topics), JoinedMs: nowMs, ClientID: h.ClientID}
		meta.Epoch++
		changed = true
	default:
		m, ok := meta.Members[h.MemberID]
		if !ok {
			return out, ch, fmt.Errorf("%w: %s is not a member of %s; rejoin with member_epoch 0", offsets.ErrUnknownMember, h.MemberID, g.Name)
		}
		if h.MemberEpoch != m.Epoch && h.MemberEpoch != m.PreviousEpoch {
			return out, ch, fmt.Errorf("%w: member %s is at epoch %d, the heartbeat carries %d; rejoin with member_epoch 0", offsets.ErrStaleMemberEpoch, h.MemberID, m.Epoch, h.MemberEpoch)
		}
		if h.Topics != nil && !slices.Equal(sortedTopics(h.Topics), m.Topics) {
			m.Topics = sortedTopics(h.Topics)
			meta.Epoch++
			changed = true
		}
		if h.Owned != nil {
			kept := fromTPs(minusTPs(toTPs(m.Owned), minusTPs(toTPs(m.Owned), toTPs(h.Owned))))
			if len(toTPs(kept)) != len(toTPs(m.Owned)) {
				m.Owned = kept
				changed = true
			}
		}
	}

	// Partition counts of subscribed topics; a change moves the epoch.
	counts := map[string]int32{}
	for _, m := range meta.Members {
		for _, t := range m.Topics {
			counts[t] = topics[t].Partitions
		}
	}
	for t, n := range counts {
		if _, ok := meta.FirstCounts[t]; !ok && n > 0 {
			if meta.FirstCounts == nil {
				meta.FirstCounts = map[string]int32{}
			}
			meta.FirstCounts[t] = n
			changed = true
		}
	}
	if !maps.Equal(counts, meta.PartitionCounts) {
		if len(meta.PartitionCounts) > 0 || len(counts) > 0 {
			meta.Epoch++
			changed = true
		}
		meta.PartitionCounts = counts
	}
	if meta.Epoch > meta.AssignmentEpoch {
		ids := slices.Sorted(maps.Keys(meta.Members))
		subs := make([]memberSub, len(ids))
		prev := map[string][]offsets.TopicPartitions{}
		for i, id := range ids {
			subs[i] = memberSub{id: id, topics: meta.Members[id].Topics}
			prev[id] = meta.Members[id].Target
		}
		targets := assign(meta.Assignor, subs, counts, prev)
		for _, id := range ids {
			meta.Members[id].Target = targets[id]
		}
		meta.AssignmentEpoch = meta.Epoch
		changed = true
	}

	if h.MemberEpoch != -1 {
		m := meta.Members[h.MemberID]
		owned, target := toTPs(m.Owned), toTPs(m.Target)
		revoke := minusTPs(owned, target)
		if len(revoke) == 0 {
			taken := map[tp]bool{}
			for _, other := range meta.Members {
				for _, x := range toTPs(other.Owned) {
					taken[x] = true
				}
			}
			for _, x := range minusTPs(target, owned) {
				if !taken[x] {
					owned = append(owned, x)
					changed = true
				}
			}
			m.Owned = fromTPs(owned)
			if m.Epoch != meta.AssignmentEpoch {
				m.PreviousEpoch, m.Epoch = m.Epoch, meta.AssignmentEpoch
				changed = true
			}
		}
		timeout := h.SessionTimeout
		if timeout == 0 {
			timeout = time.Duration(sess.SessionTimeoutMs) * time.Millisecond
		}
		if timeout == 0 {
			timeout = DefaultSessionTimeout
		}
		ch.PutSessions = append(ch.PutSessions, offsets.Session{
			ID: h.MemberID, SessionTimeoutMs: int32(timeout.Milliseconds()), DeadlineMs: nowMs + timeout.Milliseconds(), Version: sess.Version,
		})
		out.MemberEpoch = m.Epoch
		out.HeartbeatInterval = heartbeatInterval(timeout)
		out.FirstCounts = meta.FirstCounts
		out.Assignment = fromTPs(minusTPs(toTPs(m.Owned), revoke))
		if out.Assignment == nil {
			out.Assignment = []offsets.TopicPartitions{}
		}
	}
	if changed {
		ch.Meta = &meta
	}
	return out, ch, nil
}

// CommitOffsets stores a group's offsets. With a member id the member's
// epoch and ownership are checked (zombies are fenced); without one the
// group must be empty. Topics must exist and partitions be in range.
func (b *Broker) CommitOffsets(ctx context.Context, group, memberID string, epoch int32, offs []offsets.CommittedOffset) error {
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
	return b.store.CommitOffsets(ctx, group, memberID, epoch, offs)
}

// CommittedOffsets returns a group's committed offsets for topics that
// still exist (a deleted and re-created topic does not inherit them).
func (b *Broker) CommittedOffsets(ctx context.Context, group, topic string) ([]offsets.CommittedOffset, error) {
	all, err := b.store.FetchOffsets(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, o := range all {
		names[o.Topic] = true
	}
	topics, err := b.store.Topics(ctx, slices.Sorted(maps.Keys(names)))
	if err != nil {
		return nil, err
	}
	var out []offsets.CommittedOffset
	for _, o := range all {
		if t, ok := topics[o.Topic]; ok && (o.TopicID == "" || o.TopicID == t.ID) {
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
	if !p.NoCommit && len(p.Positions) > 0 && p.MemberEpoch > 0 {
		res.CommitErr = b.CommitOffsets(ctx, p.Group, p.MemberID, p.MemberEpoch, slices.Clone(p.Positions))
	}
	a, err := b.Heartbeat(ctx, p.Heartbeat)
	if err != nil {
		return res, err
	}
	res.HeartbeatResult = a
	if a.MemberEpoch < 0 || len(a.Assignment) == 0 {
		return res, nil
	}
	given := map[tp]int64{}
	for _, o := range p.Positions {
		given[tp{o.Topic, o.Partition}] = o.Offset
	}
	committed := map[tp]int64{}
	cos, err := b.CommittedOffsets(ctx, p.Group, "")
	if err != nil {
		return res, err
	}
	for _, o := range cos {
		committed[tp{o.Topic, o.Partition}] = o.Offset
	}
	var reqs []FetchRequest
	for _, x := range toTPs(a.Assignment) {
		off, ok := given[x]
		if !ok {
			off, ok = committed[x]
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
	if err := b.store.CommitOffsets(ctx, group, "", 0, out); err != nil {
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
	g, err := b.store.LoadGroup(ctx, group)
	if err != nil {
		return GroupInfo{}, err
	}
	if !g.Exists {
		return GroupInfo{}, fmt.Errorf("%w: %s", offsets.ErrUnknownGroup, group)
	}
	now := b.now().UnixMilli()
	info := GroupInfo{Name: group, Epoch: g.Meta.Epoch, AssignmentEpoch: g.Meta.AssignmentEpoch, Assignor: g.Meta.Assignor, State: GroupStable}
	for _, id := range g.LiveMembers(now) {
		m, s := g.Meta.Members[id], g.Sessions[id]
		info.Members = append(info.Members, MemberInfo{
			ID: id, Epoch: m.Epoch, Topics: m.Topics, Assignment: m.Owned, Target: m.Target,
			SessionTimeoutMs: s.SessionTimeoutMs, DeadlineMs: s.DeadlineMs, ClientID: m.ClientID,
		})
		if m.Epoch != g.Meta.AssignmentEpoch || !slices.Equal(toTPs(m.Owned), toTPs(m.Target)) {
			info.State = GroupReconciling
		}
	}
	if len(info.Members) == 0 {
		info.State = GroupEmpty
	}
	return info, nil
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
	TimeLagMs int64  // age of the oldest unconsumed record
}

// GroupLag computes a group's lag on every partition of the topics its
// members subscribe to or it has committed offsets for. Lag counts from
// the committed offset (or the log start, without one) to the log end;
// time lag is how old the first unconsumed record is.
func (b *Broker) GroupLag(ctx context.Context, group string) ([]PartitionLag, error) {
	g, err := b.store.LoadGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	cos, err := b.CommittedOffsets(ctx, group, "")
	if err != nil {
		return nil, err
	}
	if !g.Exists && len(cos) == 0 {
		return nil, fmt.Errorf("%w: %s", offsets.ErrUnknownGroup, group)
	}
	committed := map[tp]int64{}
	names := map[string]bool{}
	for _, o := range cos {
		committed[tp{o.Topic, o.Partition}] = o.Offset
		names[o.Topic] = true
	}
	owner := map[tp]string{}
	now := b.now().UnixMilli()
	live := map[string]bool{}
	for _, id := range g.LiveMembers(now) {
		live[id] = true
	}
	for id, m := range g.Meta.Members {
		for _, t := range m.Topics {
			names[t] = true
		}
		if live[id] {
			for _, x := range toTPs(m.Owned) {
				owner[x] = id
			}
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
			l := PartitionLag{Topic: name, Partition: st.Partition, LogStart: st.LogStart, LogEnd: st.LogEnd, MemberID: owner[x]}
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
