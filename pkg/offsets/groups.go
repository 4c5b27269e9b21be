package offsets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TopicPartitions names some partitions of one topic.
type TopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// GroupMeta is a consumer group's state (KIP-848 style). Everything that
// decides partition ownership lives in this one item, so every decision is
// made on one consistent snapshot and serialized by its version: a Query
// over several items is only read-committed per item, and a torn view of
// ownership could hand one partition to two members.
type GroupMeta struct {
	// Epoch is the group epoch, bumped whenever membership, subscriptions
	// or subscribed partition counts change.
	Epoch int32 `json:"epoch"`
	// AssignmentEpoch is the group epoch the members' targets were
	// computed for.
	AssignmentEpoch int32                   `json:"assignment_epoch"`
	Assignor        string                  `json:"assignor"`
	Members         map[string]*GroupMember `json:"members,omitempty"`
	PartitionCounts map[string]int32        `json:"partition_counts,omitempty"`
	// FirstCounts is each subscribed topic's partition count when the
	// group first subscribed to it: partitions added later start at their
	// earliest offset, so records written to them before a member took
	// them are not skipped.
	FirstCounts map[string]int32 `json:"first_counts,omitempty"`
	CreatedMs   int64            `json:"created_ms"`
}

// GroupMember is one member's part of the group state.
type GroupMember struct {
	// Epoch fences the member's commits; PreviousEpoch is still accepted
	// on heartbeats, so a lost response does not fence a healthy member.
	Epoch         int32             `json:"epoch"`
	PreviousEpoch int32             `json:"previous_epoch"`
	Topics        []string          `json:"topics"`
	Target        []TopicPartitions `json:"target,omitempty"`
	// Owned is what the member may consume now. A partition is in at most
	// one member's Owned; it moves only after its owner released it (a
	// heartbeat without it) or left or expired.
	Owned    []TopicPartitions `json:"owned,omitempty"`
	ClientID string            `json:"client_id,omitempty"`
	JoinedMs int64             `json:"joined_ms"`
}

func (g *GroupMeta) validate() error {
	if g.Epoch < 0 || g.AssignmentEpoch < 0 || g.AssignmentEpoch > g.Epoch {
		return fmt.Errorf("group epoch %d assignment epoch %d", g.Epoch, g.AssignmentEpoch)
	}
	for id, m := range g.Members {
		if id == "" || m == nil || m.Epoch < 0 {
			return fmt.Errorf("group member %q", id)
		}
	}
	return nil
}

// Owns reports whether the member owns topic/partition.
func (m *GroupMember) Owns(topic string, p int32) bool {
	for _, tp := range m.Owned {
		if tp.Topic == topic && slices.Contains(tp.Partitions, p) {
			return true
		}
	}
	return false
}

// Session is a member's liveness: its own small item, rewritten by every
// heartbeat, so the group item is only written when something changes.
type Session struct {
	ID               string `json:"id"`
	SessionTimeoutMs int32  `json:"session_timeout_ms"`
	DeadlineMs       int64  `json:"deadline_ms"`
	Version          int64  `json:"-"`
}

func (m *Session) validate() error {
	if m.ID == "" || m.SessionTimeoutMs <= 0 {
		return fmt.Errorf("session %q timeout %d", m.ID, m.SessionTimeoutMs)
	}
	return nil
}

// Live reports whether the session is unexpired at nowMs.
func (m *Session) Live(nowMs int64) bool { return m.DeadlineMs > nowMs }

// Group is a consumer group as read: its meta and member sessions.
type Group struct {
	Name        string
	Exists      bool
	Meta        GroupMeta
	MetaVersion int64
	Sessions    map[string]Session
}

// LiveMembers returns the ids of members with unexpired sessions, sorted.
func (g *Group) LiveMembers(nowMs int64) []string {
	var live []string
	for id := range g.Meta.Members {
		if s, ok := g.Sessions[id]; ok && s.Live(nowMs) {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	return live
}

// ValidateGroupName: the same characters as topics (they appear in keys),
// up to 249 of them.
func ValidateGroupName(g string) error {
	return validateName("group", "group name", g, MaxTopicNameLen)
}

// ValidateMemberID: 1-100 characters of [a-zA-Z0-9._-].
func ValidateMemberID(id string) error { return validateName("member_id", "member_id", id, 100) }

// LoadGroup reads a group's meta and member sessions in one strongly
// consistent query.
func (s *Store) LoadGroup(ctx context.Context, name string) (Group, error) {
	if err := ValidateGroupName(name); err != nil {
		return Group{}, err
	}
	g := Group{Name: name, Sessions: map[string]Session{}}
	// "m#..." sessions sort before "meta"; committed offsets ("c#") are excluded.
	for from := membPrefix; ; {
		items, more, err := s.t.Query(ctx, groupPK(name), Range{From: from, To: skMeta}, 0)
		if err != nil {
			return Group{}, err
		}
		for _, it := range items {
			if it.SK == skMeta {
				if err := decode(it, &g.Meta); err != nil {
					return Group{}, err
				}
				g.Exists, g.MetaVersion = true, it.Version
				continue
			}
			var m Session
			if err := decode(it, &m); err != nil {
				return Group{}, err
			}
			m.Version = it.Version
			g.Sessions[m.ID] = m
		}
		if !more || len(items) == 0 {
			break
		}
		from = items[len(items)-1].SK + "\x01"
	}
	return g, nil
}

// GroupChange is a conditional update of a group read with LoadGroup. It
// applies only if the meta (written or just checked) and every touched
// session are as read.
type GroupChange struct {
	Meta           *GroupMeta // nil: meta untouched, but still checked
	PutSessions    []Session  // Version: as read, 0 if new
	DeleteSessions []Session  // Version: as read
}

// SaveGroup writes a GroupChange. A lost race is an error wrapping
// ErrConditionFailed: reload and recompute.
func (s *Store) SaveGroup(ctx context.Context, g Group, ch GroupChange) error {
	var w tx
	metaKey := Key{groupPK(g.Name), skMeta}
	if ch.Meta != nil {
		w.put(metaKey, g.MetaVersion, ch.Meta)
		if !g.Exists {
			w.put(groupDirKey(g.Name), AnyVersion, &groupDir{Name: g.Name})
		}
	} else {
		w.check(metaKey, g.MetaVersion)
	}
	for _, m := range ch.PutSessions {
		ttl := (m.DeadlineMs + 24*3600*1000) / 1000 // kept a day past expiry, for inspection
		w.putTTL(memberKey(g.Name, m.ID), m.Version, &m, ttl)
	}
	for _, m := range ch.DeleteSessions {
		w.del(memberKey(g.Name, m.ID), m.Version)
	}
	if len(w.ops) > MaxWriteOps {
		return invalidf("group change touches %d items, limit %d", len(w.ops), MaxWriteOps)
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

// CommitOffsets stores committed offsets for a group. With a member id, the
// member must exist, be live, carry its current epoch and own every
// partition (ErrUnknownMember, ErrStaleMemberEpoch,
// ErrPartitionNotAssigned); the write is conditional on the member item, so
// a zombie whose epoch was bumped concurrently changes nothing. Without a
// member id (a standalone commit, as by admin tools) the group must have no
// live members (ErrGroupNotEmpty); the group is created if needed.
func (s *Store) CommitOffsets(ctx context.Context, group, memberID string, memberEpoch int32, offsets []CommittedOffset) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if len(offsets) == 0 || len(offsets) > MaxWriteOps-2 {
		return invalid("offsets", "commit between 1 and %d offsets at once", MaxWriteOps-2)
	}
	seen := map[[2]any]bool{}
	for i, o := range offsets {
		switch {
		case o.Offset < 0:
			return invalid(fmt.Sprintf("offsets[%d].offset", i), "%d is negative", o.Offset)
		case len(o.Metadata) > MaxCommitMetadata:
			return invalid(fmt.Sprintf("offsets[%d].metadata", i), "%d bytes, the limit is %d", len(o.Metadata), MaxCommitMetadata)
		case ValidateTopicName(o.Topic) != nil || o.Partition < 0:
			return invalid(fmt.Sprintf("offsets[%d]", i), "topic %q partition %d is not a valid partition", o.Topic, o.Partition)
		case seen[[2]any{o.Topic, o.Partition}]:
			return invalid(fmt.Sprintf("offsets[%d]", i), "%s/%d appears twice", o.Topic, o.Partition)
		}
		seen[[2]any{o.Topic, o.Partition}] = true
	}
	return s.loop(ctx, "commit offsets", func() (bool, error) {
		now := s.nowMs()
		var w tx
		if memberID != "" {
			items, err := s.t.Get(ctx, Key{groupPK(group), skMeta}, memberKey(group, memberID))
			if err != nil {
				return false, err
			}
			var meta GroupMeta
			var sess Session
			if items[0].Exists() {
				if err := decode(items[0], &meta); err != nil {
					return false, err
				}
			}
			if items[1].Exists() {
				if err := decode(items[1], &sess); err != nil {
					return false, err
				}
			}
			m, ok := meta.Members[memberID]
			if !ok || !items[1].Exists() || !sess.Live(now) {
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
			// Both items decided: the commit lands only if neither changed.
			w.check(items[0].Key, items[0].Version)
			w.check(items[1].Key, items[1].Version)
		} else {
			g, err := s.LoadGroup(ctx, group)
			if err != nil {
				return false, err
			}
			if live := g.LiveMembers(now); len(live) > 0 {
				return false, fmt.Errorf("%w: %s has %d live members; commit as a member or wait until it is empty", ErrGroupNotEmpty, group, len(live))
			}
			if g.Exists {
				w.check(Key{groupPK(group), skMeta}, g.MetaVersion)
			} else {
				w.put(Key{groupPK(group), skMeta}, 0, &GroupMeta{Assignor: "uniform", CreatedMs: now})
				w.put(groupDirKey(group), AnyVersion, &groupDir{Name: group})
			}
		}
		for _, o := range offsets {
			o.CommittedMs, o.MemberID = now, memberID
			w.put(commitKey(group, o.Topic, o.Partition), AnyVersion, &o)
		}
		return true, s.t.Write(ctx, w.ops...)
	})
}

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
	for r := Prefix(prefix); ; {
		items, more, err := s.t.Query(ctx, groupPK(group), r, 0)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			var c CommittedOffset
			if err := decode(it, &c); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		if !more || len(items) == 0 {
			return out, nil
		}
		r.From = items[len(items)-1].SK + "\x01"
	}
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

// DeleteGroup removes an empty group: its committed offsets (in chunks,
// each conditional on the group staying unchanged), expired members, meta
// and directory entry. It is retryable; a failure part way leaves the
// group in place with fewer offsets.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	return s.loop(ctx, "delete group", func() (bool, error) {
		g, err := s.LoadGroup(ctx, group)
		if err != nil {
			return false, err
		}
		if !g.Exists {
			return false, fmt.Errorf("%w: %s", ErrUnknownGroup, group)
		}
		if live := g.LiveMembers(s.nowMs()); len(live) > 0 {
			return false, fmt.Errorf("%w: %s has %d live members", ErrGroupNotEmpty, group, len(live))
		}
		metaKey := Key{groupPK(group), skMeta}
		items, more, err := s.t.Query(ctx, groupPK(group), Prefix(commPrefix), MaxWriteOps-1)
		if err != nil {
			return false, err
		}
		var w tx
		for _, it := range items {
			w.del(it.Key, it.Version)
		}
		if more || len(items)+len(g.Sessions)+2 > MaxWriteOps {
			w.check(metaKey, g.MetaVersion)
			return false, s.t.Write(ctx, w.ops...) // another round for the rest
		}
		for _, m := range g.Sessions {
			w.del(memberKey(group, m.ID), m.Version)
		}
		w.del(metaKey, g.MetaVersion)
		w.del(groupDirKey(group), AnyVersion)
		return true, s.t.Write(ctx, w.ops...)
	})
}
