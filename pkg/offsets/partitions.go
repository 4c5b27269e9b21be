package offsets

import (
	"context"
	"fmt"
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
		out[i] = PartitionState{
			Partition: p, LogStart: c.LogStart, LogEnd: h.LogEnd, Bytes: h.Bytes - c.BytesRemoved,
			LastAppendMs: h.LastAppendMs, MaxTimestamp: h.MaxTimestamp, FenceToken: h.FenceToken,
			Deleted: h.Deleted, HeadVersion: out[i].HeadVersion,
		}
		// Retention can move the log start past the end of an idle log.
		out[i].LogStart = min(out[i].LogStart, out[i].LogEnd)
	}
	return out, nil
}

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
