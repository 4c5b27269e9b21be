package offsets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Topic is a topic's metadata. Its ID is assigned at creation and never
// reused, so a deleted and re-created name never sees old data.
type Topic struct {
	Name       string      `json:"name"`
	ID         string      `json:"id"`
	Partitions int32       `json:"partitions"`
	Config     TopicConfig `json:"config"`
	CreatedMs  int64       `json:"created_ms"`
	Version    int64       `json:"-"`
}

// TopicConfig is a topic's configuration, in Kafka's terms.
type TopicConfig struct {
	// RetentionMs: how long records are kept; -1 keeps them forever.
	RetentionMs int64 `json:"retention_ms"`
	// RetentionBytes: the most bytes kept per partition; -1 is no limit.
	RetentionBytes int64 `json:"retention_bytes"`
	// CleanupPolicy: "delete", "compact" or "compact,delete".
	CleanupPolicy string `json:"cleanup_policy"`
	// MaxRecordBytes: the largest record accepted.
	MaxRecordBytes int64 `json:"max_record_bytes"`
	// DeleteRetentionMs: how long key compaction keeps tombstones.
	DeleteRetentionMs int64 `json:"delete_retention_ms"`
	// TimestampType: "create" (producer's) or "log_append" (broker's).
	TimestampType string `json:"timestamp_type"`
	// SegmentBytes: target size of compacted per-partition segments.
	SegmentBytes int64 `json:"segment_bytes"`
}

// Limits and defaults for topics.
const (
	MaxTopicNameLen   = 249
	MaxPartitions     = 10000
	MaxRecordBytesMax = 5 << 20
	DefaultRetention  = 7 * 24 * 3600 * 1000
)

// DefaultTopicConfig is what a topic gets for settings it does not name.
func DefaultTopicConfig() TopicConfig {
	return TopicConfig{
		RetentionMs:       DefaultRetention,
		RetentionBytes:    -1,
		CleanupPolicy:     "delete",
		MaxRecordBytes:    1 << 20,
		DeleteRetentionMs: 24 * 3600 * 1000,
		TimestampType:     "create",
		SegmentBytes:      64 << 20,
	}
}

// Compact reports whether key compaction applies.
func (c TopicConfig) Compact() bool { return strings.Contains(c.CleanupPolicy, "compact") }

// Delete reports whether retention deletes old records.
func (c TopicConfig) Delete() bool { return strings.Contains(c.CleanupPolicy, "delete") }

// Validate checks every setting and names the first bad one.
func (c *TopicConfig) Validate() error {
	switch c.CleanupPolicy {
	case "delete", "compact", "compact,delete":
	case "delete,compact":
		c.CleanupPolicy = "compact,delete"
	default:
		return invalid("config.cleanup_policy", "%q must be delete, compact or compact,delete", c.CleanupPolicy)
	}
	switch {
	case c.RetentionMs < -1 || c.RetentionMs == 0:
		return invalid("config.retention_ms", "%d must be -1 (forever) or positive", c.RetentionMs)
	case c.RetentionBytes < -1 || c.RetentionBytes == 0:
		return invalid("config.retention_bytes", "%d must be -1 (no limit) or positive", c.RetentionBytes)
	case c.MaxRecordBytes < 1 || c.MaxRecordBytes > MaxRecordBytesMax:
		return invalid("config.max_record_bytes", "%d must be between 1 and %d", c.MaxRecordBytes, MaxRecordBytesMax)
	case c.DeleteRetentionMs < 0:
		return invalid("config.delete_retention_ms", "%d must not be negative", c.DeleteRetentionMs)
	case c.TimestampType != "create" && c.TimestampType != "log_append":
		return invalid("config.timestamp_type", "%q must be create or log_append", c.TimestampType)
	case c.SegmentBytes < 1<<20 || c.SegmentBytes > 1<<30:
		return invalid("config.segment_bytes", "%d must be between 1 MiB and 1 GiB", c.SegmentBytes)
	}
	return nil
}

func (t *Topic) validate() error {
	if ValidateTopicName(t.Name) != nil || t.ID == "" || t.Partitions < 1 {
		return fmt.Errorf("topic %q id %q partitions %d", t.Name, t.ID, t.Partitions)
	}
	return nil
}

// ValidateTopicName applies Kafka's rule: 1-249 of [a-zA-Z0-9._-], and not
// "." or "..".
func ValidateTopicName(name string) error {
	return validateName("name", "topic name", name, MaxTopicNameLen)
}

// validateName checks a name that becomes part of item keys.
func validateName(field, label, name string, maxLen int) error {
	if name == "" {
		return invalid(field, "%s is empty", label)
	}
	if len(name) > maxLen {
		return invalid(field, "%s is %d characters, the limit is %d", label, len(name), maxLen)
	}
	if name == "." || name == ".." {
		return invalid(field, "%s cannot be %q", label, name)
	}
	// Positions count characters, not bytes: "ünïcode" is refused at 'ü'
	// (position 0), not at half of it.
	for i, c := range []rune(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid(field, "%s %q has %q at position %d; allowed are a-z, A-Z, 0-9, '.', '_' and '-'", label, name, c, i)
		}
	}
	return nil
}

func validatePartitions(n int32) error {
	if n < 1 || n > MaxPartitions {
		return invalid("partitions", "%d must be between 1 and %d", n, MaxPartitions)
	}
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateTopic creates a topic with a fresh id. cfg must be complete (start
// from DefaultTopicConfig); it is validated here.
func (s *Store) CreateTopic(ctx context.Context, name string, partitions int32, cfg TopicConfig) (Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return Topic{}, err
	}
	if err := validatePartitions(partitions); err != nil {
		return Topic{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Topic{}, err
	}
	t := Topic{Name: name, ID: newID(), Partitions: partitions, Config: cfg, CreatedMs: s.nowMs()}
	wrote := false
	err := s.loop(ctx, "create topic", func() (bool, error) {
		if wrote {
			// An earlier write's outcome is unknown: it may have landed.
			cur, err := s.Topic(ctx, name)
			switch {
			case err == nil && cur.ID == t.ID:
				t = cur
				return true, nil
			case err == nil:
				return false, fmt.Errorf("%w: %s", ErrTopicExists, name)
			case !errors.Is(err, ErrUnknownTopic):
				return false, err
			}
		}
		wrote = true
		err := s.t.Write(ctx, Put(topicKey(name), 0, encode(&t)))
		switch {
		case errors.Is(err, ErrConditionFailed):
			return false, fmt.Errorf("%w: %s", ErrTopicExists, name)
		case ambiguous(ctx, err):
			return false, fmt.Errorf("%w: %v", ErrConflict, err) // read back, then decide
		case err != nil:
			return false, err
		}
		t.Version = 1
		return true, nil
	})
	if err != nil {
		return Topic{}, err
	}
	return t, nil
}

// ambiguous reports whether a write's error leaves its outcome unknown.
func ambiguous(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && !retryable(err) && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrInvalid)
}

// Topic returns a topic by name.
func (s *Store) Topic(ctx context.Context, name string) (Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return Topic{}, err
	}
	var t Topic
	it, err := s.get(ctx, topicKey(name), &t)
	if err != nil {
		return Topic{}, err
	}
	if !it.Exists() {
		return Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	t.Version = it.Version
	return t, nil
}

// ListTopics returns up to limit topics whose names sort after `after`, and
// the name to continue from ("" at the end).
func (s *Store) ListTopics(ctx context.Context, after string, limit int) ([]Topic, string, error) {
	from := "t#"
	if after != "" {
		from = "t#" + after + "\x01"
	}
	items, more, err := s.t.Query(ctx, pkTopics, Range{From: from, To: "t#~"}, limit)
	if err != nil {
		return nil, "", err
	}
	topics := make([]Topic, 0, len(items))
	for _, it := range items {
		var t Topic
		if err := decode(it, &t); err != nil {
			return nil, "", err
		}
		t.Version = it.Version
		topics = append(topics, t)
	}
	next := ""
	if more && len(topics) > 0 {
		next = topics[len(topics)-1].Name
	}
	return topics, next, nil
}

// updateTopic applies change to the current topic with a conditional write,
// retrying on races.
func (s *Store) updateTopic(ctx context.Context, name string, change func(*Topic) error) (Topic, error) {
	var out Topic
	err := s.loop(ctx, "update topic", func() (bool, error) {
		t, err := s.Topic(ctx, name)
		if err != nil {
			return false, err
		}
		if err := change(&t); err != nil {
			return false, err
		}
		if err := s.t.Write(ctx, Put(topicKey(name), t.Version, encode(&t))); err != nil {
			return false, err
		}
		t.Version++
		out = t
		return true, nil
	})
	return out, err
}

// IncreasePartitions grows a topic to n partitions. Partition counts never
// shrink (Kafka's rule): a smaller n is ErrInvalid, an equal n a no-op.
// New partitions start empty; groups see them on their next heartbeat.
//
// The existing partitions' heads learn the new count before the topic
// does, so that once this returns no commit of records partitioned by key
// with the old count can land (Append.Partitions): a key's records never
// alternate between its old and its new partition.
func (s *Store) IncreasePartitions(ctx context.Context, name string, n int32) (Topic, error) {
	if err := validatePartitions(n); err != nil {
		return Topic{}, err
	}
	t, err := s.Topic(ctx, name)
	if err != nil {
		return Topic{}, err
	}
	if n < t.Partitions {
		return Topic{}, invalid("partitions", "topic %s has %d partitions and partition counts cannot shrink (asked for %d)", name, t.Partitions, n)
	}
	if n == t.Partitions {
		return t, nil
	}
	if err := s.raisePartitionCount(ctx, t, n); err != nil {
		return Topic{}, err
	}
	return s.updateTopic(ctx, name, func(cur *Topic) error {
		if cur.ID != t.ID {
			return fmt.Errorf("%w: %s was deleted and re-created meanwhile", ErrUnknownTopic, name)
		}
		if n < cur.Partitions {
			return invalid("partitions", "topic %s has %d partitions and partition counts cannot shrink (asked for %d)", name, cur.Partitions, n)
		}
		cur.Partitions = n
		return nil
	})
}

// raisePartitionCount records n in the heads of t's partitions (never
// lowering a count a concurrent, larger increase wrote).
func (s *Store) raisePartitionCount(ctx context.Context, t Topic, n int32) error {
	for start := int32(0); start < t.Partitions; start += MaxWriteOps {
		end := min(start+MaxWriteOps, t.Partitions)
		err := s.loop(ctx, "raise partition count", func() (bool, error) {
			keys := make([]Key, 0, end-start)
			for p := start; p < end; p++ {
				keys = append(keys, headKey(t.ID, p))
			}
			items, err := s.getMany(ctx, keys)
			if err != nil {
				return false, err
			}
			var w tx
			for _, it := range items {
				var h Head
				if it.Exists() {
					if err := decode(it, &h); err != nil {
						return false, err
					}
				}
				if h.Partitions >= n || h.Deleted {
					continue
				}
				h.Partitions = n
				w.put(it.Key, it.Version, &h)
			}
			if len(w.ops) == 0 {
				return true, nil
			}
			return true, s.t.Write(ctx, w.ops...)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// AlterTopicConfig replaces a topic's configuration (callers merge partial
// changes onto the current one first).
func (s *Store) AlterTopicConfig(ctx context.Context, name string, cfg TopicConfig) (Topic, error) {
	if err := cfg.Validate(); err != nil {
		return Topic{}, err
	}
	return s.updateTopic(ctx, name, func(t *Topic) error {
		t.Config = cfg
		return nil
	})
}

// DeletedTopic is a deleted topic whose partitions the compactor has not
// cleaned up yet.
type DeletedTopic struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Partitions int32  `json:"partitions"`
	DeletedMs  int64  `json:"deleted_ms"`
	Version    int64  `json:"-"`
}

func (d *DeletedTopic) validate() error {
	if d.ID == "" || d.Partitions < 1 {
		return fmt.Errorf("deleted topic %q partitions %d", d.ID, d.Partitions)
	}
	return nil
}

// DeleteTopic removes a topic. The name is free again at once; the data is
// fenced (heads marked deleted, so late commits through stale caches fail)
// and later purged by the compactor.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	var t Topic
	err := s.loop(ctx, "delete topic", func() (bool, error) {
		var err error
		if t, err = s.Topic(ctx, name); err != nil {
			return false, err
		}
		var w tx
		w.del(topicKey(name), t.Version)
		w.put(Key{pkDeleted, t.ID}, 0, &DeletedTopic{Name: name, ID: t.ID, Partitions: t.Partitions, DeletedMs: s.nowMs()})
		return true, s.t.Write(ctx, w.ops...)
	})
	if err != nil {
		return err
	}
	for p := range t.Partitions {
		if err := s.markDeleted(ctx, t.ID, p); err != nil {
			// The compactor's purge marks what is left; the delete itself stands.
			s.log.Warn("marking deleted partition", "topic", name, "partition", p, "err", err)
		}
	}
	return nil
}

func (s *Store) markDeleted(ctx context.Context, topicID string, p int32) error {
	return s.loop(ctx, "mark deleted", func() (bool, error) {
		var h Head
		it, err := s.get(ctx, headKey(topicID, p), &h)
		if err != nil || h.Deleted {
			return err == nil, err
		}
		h.Deleted = true
		return true, s.t.Write(ctx, Put(headKey(topicID, p), it.Version, encode(&h)))
	})
}

// DeletedTopics lists deleted topics awaiting cleanup.
func (s *Store) DeletedTopics(ctx context.Context, limit int) ([]DeletedTopic, error) {
	items, _, err := s.t.Query(ctx, pkDeleted, Range{From: "", To: "~"}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeletedTopic, 0, len(items))
	for _, it := range items {
		var d DeletedTopic
		if err := decode(it, &d); err != nil {
			return nil, err
		}
		d.Version = it.Version
		out = append(out, d)
	}
	return out, nil
}

// Topics reads several topics at once (strongly consistent); names that do
// not exist are absent from the result.
func (s *Store) Topics(ctx context.Context, names []string) (map[string]Topic, error) {
	keys := make([]Key, 0, len(names))
	for _, n := range names {
		if ValidateTopicName(n) == nil {
			keys = append(keys, topicKey(n))
		}
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Topic, len(items))
	for _, it := range items {
		if !it.Exists() {
			continue
		}
		var t Topic
		if err := decode(it, &t); err != nil {
			return nil, err
		}
		t.Version = it.Version
		out[t.Name] = t
	}
	return out, nil
}
