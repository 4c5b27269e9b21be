package offsets

import (
	"context"
)

// Index returns the index entries of a partition that hold offsets at or
// after from, in offset order: the entry containing from first. At most
// limit entries (limit <= 0: all); more reports whether others follow.
// One Query: entries are keyed by their last offset, so "last >= from" is
// a range scan.
func (s *Store) Index(ctx context.Context, topicID string, p int32, from int64, limit int) ([]IndexEntry, bool, error) {
	if from < 0 {
		from = 0
	}
	items, more, err := s.t.Query(ctx, partPK(topicID, p), Range{From: segSK(from), To: segPrefix + "~"}, limit)
	if err != nil {
		return nil, false, err
	}
	return decodeEntries(items, more)
}

func decodeEntries(items []Item, more bool) ([]IndexEntry, bool, error) {
	out := make([]IndexEntry, len(items))
	for i, it := range items {
		if err := decode(it, &out[i]); err != nil {
			return nil, false, err
		}
		out[i].Version = it.Version
	}
	return out, more, nil
}

// EntryForTimestamp returns the first index entry holding offsets at or
// after from that may hold a record with timestamp >= ts (the first whose
// max timestamp reaches ts), or ok false if there is none. Timestamps need
// not be monotonic within a partition, as in Kafka, so the caller scans the
// entry's records for the exact offset.
func (s *Store) EntryForTimestamp(ctx context.Context, topicID string, p int32, from, ts int64) (IndexEntry, bool, error) {
	const page = 100
	for {
		entries, more, err := s.Index(ctx, topicID, p, from, page)
		if err != nil {
			return IndexEntry{}, false, err
		}
		for _, e := range entries {
			if e.MaxTs >= ts && e.Records > 0 {
				return e, true, nil
			}
		}
		if !more || len(entries) == 0 {
			return IndexEntry{}, false, nil
		}
		from = entries[len(entries)-1].Last + 1
	}
}
