package offsets

import (
	"context"
	"fmt"
	"time"
)

// PartitionState is what readers need to know about a partition.
type PartitionState struct {
	Partition    int32
	LogStart     int64
	LogEnd       int64 // exclusive; the high watermark
	Bytes        int64 // bytes currently retained
	LastAppendMs int64
	MaxTimestamp int64
	FenceToken   string
	Deleted      bool
	HeadVersion  int64
	// Tail is the entry of the last append (see Head.Tail), if any.
	Tail *IndexEntry
}

// getMany reads any number of keys, batching by MaxWriteOps.
func (s *Store) getMany(ctx context.Context, keys []Key) ([]Item, error) {
	out := make([]Item, 0, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), MaxWriteOps)
		items, err := s.t.Get(ctx, keys[:n]...)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		keys = keys[n:]
	}
	return out, nil
}

// Partitions returns the state of the given partitions of a topic (all of
// them when parts is empty). A partition never written to is empty at 0.
func (s *Store) Partitions(ctx context.Context, t Topic, parts ...int32) ([]PartitionState, error) {
	if len(parts) == 0 {
		parts = make([]int32, t.Partitions)
		for i := range parts {
			parts[i] = int32(i)
		}
	}
	keys := make([]Key, 0, 2*len(parts))
	for _, p := range parts {
		if p < 0 || p >= t.Partitions {
			return nil, fmt.Errorf("%w: %s has partitions 0..%d, not %d", ErrUnknownPartition, t.Name, t.Partitions-1, p)
		}
		keys = append(keys, headKey(t.ID, p), ctlKey(t.ID, p))
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionState, len(parts))
	for i, p := range parts {
		var h Head
		var c Ctl
		if hi := items[2*i]; hi.Exists() {
			if err := decode(hi, &h); err != nil {
				return nil, err
			}
			out[i].HeadVersion = hi.Version
		}
		if ci := items[2*i+1]; ci.Exists() {
			if err := decode(ci, &c); err != nil {
				return nil, err
			}
		}
		out[i] = partitionState(p, h, c, out[i].HeadVersion)
	}
	return out, nil
}

func partitionState(p int32, h Head, c Ctl, version int64) PartitionState {
	return PartitionState{
		Partition: p, LogEnd: h.LogEnd, Bytes: h.Bytes - c.BytesRemoved,
		LastAppendMs: h.LastAppendMs, MaxTimestamp: h.MaxTimestamp, FenceToken: h.FenceToken,
		Deleted: h.Deleted, HeadVersion: version, Tail: h.Tail,
		// Retention can move the log start past the end of an idle log.
		LogStart: min(c.LogStart, h.LogEnd),
	}
}

// HeadRead asks Heads for one partition's state. Without WithCtl the log
// start is not read, and comes back as -1: readers that cache it read
// only heads, which is what a poll over many partitions reads each time.
type HeadRead struct {
	TopicID   string
	Partition int32
	WithCtl   bool
}

// Heads returns the state of any partitions of any topics, batching every
// key it needs (100 a call). The caller checks partitions are in range.
func (s *Store) Heads(ctx context.Context, reads []HeadRead) ([]PartitionState, error) {
	keys := make([]Key, 0, len(reads))
	for _, r := range reads {
		keys = append(keys, headKey(r.TopicID, r.Partition))
		if r.WithCtl {
			keys = append(keys, ctlKey(r.TopicID, r.Partition))
		}
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionState, len(reads))
	k := 0
	for i, r := range reads {
		var h Head
		var c Ctl
		hi := items[k]
		k++
		if hi.Exists() {
			if err := decode(hi, &h); err != nil {
				return nil, err
			}
		}
		if r.WithCtl {
			if ci := items[k]; ci.Exists() {
				if err := decode(ci, &c); err != nil {
					return nil, err
				}
			}
			k++
		}
		out[i] = partitionState(r.Partition, h, c, hi.Version)
		if !r.WithCtl {
			out[i].LogStart = -1
			out[i].Bytes = -1
		}
	}
	return out, nil
}

// GCGrace is how long an object stays stored after it lost its last
// reference.
func (s *Store) GCGrace() time.Duration { return s.gcGrace }

// SetFenceToken sets a partition's writer fencing token (S2-style). If
// current is non-nil it must equal the token in force, so only the current
// writer can hand over; appends carrying another token then get ErrFenced.
func (s *Store) SetFenceToken(ctx context.Context, t Topic, p int32, current *string, token string) error {
	if p < 0 || p >= t.Partitions {
		return fmt.Errorf("%w: %d", ErrUnknownPartition, p)
	}
	if len(token) > 256 {
		return invalid("token", "%d bytes, the limit is 256", len(token))
	}
	return s.loop(ctx, "fence", func() (bool, error) {
		var h Head
		it, err := s.get(ctx, headKey(t.ID, p), &h)
		if err != nil {
			return false, err
		}
		if h.Deleted {
			return false, fmt.Errorf("%w: %s", ErrUnknownTopic, t.Name)
		}
		if current != nil && *current != h.FenceToken {
			return false, fmt.Errorf("%w: partition %d", ErrFenced, p)
		}
		h.FenceToken = token
		return true, s.t.Write(ctx, Put(headKey(t.ID, p), it.Version, encode(&h)))
	})
}

// PartitionItems is a partition's raw metadata, for consistency checks.
type PartitionItems struct {
	Head    Head
	Ctl     Ctl
	Entries []IndexEntry // every index entry, ascending
}

// InspectPartition reads a partition's head, ctl and whole index without
// interpreting them (fsck uses it; nothing is clamped or repaired).
func (s *Store) InspectPartition(ctx context.Context, topicID string, p int32) (PartitionItems, error) {
	var out PartitionItems
	items, err := s.t.Get(ctx, headKey(topicID, p), ctlKey(topicID, p))
	if err != nil {
		return out, err
	}
	if items[0].Exists() {
		if err := decode(items[0], &out.Head); err != nil {
			return out, err
		}
	}
	if items[1].Exists() {
		if err := decode(items[1], &out.Ctl); err != nil {
			return out, err
		}
	}
	for from := int64(0); ; {
		entries, more, err := s.Index(ctx, topicID, p, from, 1000)
		if err != nil {
			return out, err
		}
		out.Entries = append(out.Entries, entries...)
		if !more || len(entries) == 0 {
			return out, nil
		}
		from = entries[len(entries)-1].Last + 1
	}
}
