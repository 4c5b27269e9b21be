package offsets

import (
	"fmt"
	"strconv"
	"strings"
)

// Kafka's names for topic settings. Users arrive with them (kafka-topics,
// AdminClient, Kafka Streams, Spark), so both front ends accept them:
// those with a Streambed setting change it; those that mean nothing on
// object storage (replication, local segment files, flushing) are
// accepted and ignored, and reported with Kafka's default; others are
// refused.

// KafkaSetting is one Kafka topic config name Streambed knows.
type KafkaSetting struct {
	Name string
	// Field is the Streambed setting it maps to ("" if it is ignored).
	Field string
	// Doc says what it means here.
	Doc string
	get func(TopicConfig) string
	set func(*TopicConfig, string) error
	// dflt is what an ignored setting reports.
	dflt string
}

// Ignored reports whether the setting has no effect on Streambed.
func (k KafkaSetting) Ignored() bool { return k.set == nil }

// Value is the setting's value in c (Kafka's default for an ignored one).
func (k KafkaSetting) Value(c TopicConfig) string {
	if k.get == nil {
		return k.dflt
	}
	return k.get(c)
}

func int64Setting(name, field, doc string, get func(TopicConfig) int64, set func(*TopicConfig, int64)) KafkaSetting {
	return KafkaSetting{Name: name, Field: field, Doc: doc,
		get: func(c TopicConfig) string { return strconv.FormatInt(get(c), 10) },
		set: func(c *TopicConfig, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("%s=%q is not a number", name, v)
			}
			set(c, n)
			return nil
		}}
}

func ignored(name, dflt, doc string) KafkaSetting {
	return KafkaSetting{Name: name, Doc: doc, dflt: dflt}
}

// KafkaSettings lists every Kafka topic config name Streambed accepts.
func KafkaSettings() []KafkaSetting {
	return []KafkaSetting{
		int64Setting("retention.ms", "retention_ms", "how long records are kept (-1: forever)",
			func(c TopicConfig) int64 { return c.RetentionMs }, func(c *TopicConfig, v int64) { c.RetentionMs = v }),
		int64Setting("retention.bytes", "retention_bytes", "the most bytes kept per partition (-1: no limit)",
			func(c TopicConfig) int64 { return c.RetentionBytes }, func(c *TopicConfig, v int64) { c.RetentionBytes = v }),
		{Name: "cleanup.policy", Field: "cleanup_policy", Doc: "delete, compact, or both",
			get: func(c TopicConfig) string { return c.CleanupPolicy },
			set: func(c *TopicConfig, v string) error { c.CleanupPolicy = strings.ReplaceAll(v, " ", ""); return nil }},
		int64Setting("max.message.bytes", "max_record_bytes", "the largest record batch (Kafka) or record (HTTP) accepted",
			func(c TopicConfig) int64 { return c.MaxRecordBytes }, func(c *TopicConfig, v int64) { c.MaxRecordBytes = v }),
		int64Setting("delete.retention.ms", "delete_retention_ms", "how long key compaction keeps tombstones",
			func(c TopicConfig) int64 { return c.DeleteRetentionMs }, func(c *TopicConfig, v int64) { c.DeleteRetentionMs = v }),
		{Name: "message.timestamp.type", Field: "timestamp_type", Doc: "CreateTime (the producer's) or LogAppendTime (the broker's)",
			get: func(c TopicConfig) string {
				if c.TimestampType == "log_append" {
					return "LogAppendTime"
				}
				return "CreateTime"
			},
			set: func(c *TopicConfig, v string) error {
				switch v {
				case "CreateTime":
					c.TimestampType = "create"
				case "LogAppendTime":
					c.TimestampType = "log_append"
				default:
					return fmt.Errorf("message.timestamp.type=%q: use CreateTime or LogAppendTime", v)
				}
				return nil
			}},
		int64Setting("segment.bytes", "segment_bytes", "the size the compactor merges a partition's records into",
			func(c TopicConfig) int64 { return c.SegmentBytes }, func(c *TopicConfig, v int64) { c.SegmentBytes = v }),
		ignored("compression.type", "producer", "batches are stored as producers compressed them"),
		ignored("min.insync.replicas", "1", "storage is replicated by the object store"),
		ignored("unclean.leader.election.enable", "false", "there are no leaders to elect"),
		ignored("segment.ms", "604800000", "no local segment files"),
		ignored("segment.index.bytes", "10485760", "no local segment files"),
		ignored("segment.jitter.ms", "0", "no local segment files"),
		ignored("index.interval.bytes", "4096", "segments carry their own batch index"),
		ignored("flush.messages", "9223372036854775807", "every acknowledged record is durable"),
		ignored("flush.ms", "9223372036854775807", "every acknowledged record is durable"),
		ignored("file.delete.delay.ms", "60000", "objects are deleted by the compactor's GC"),
		ignored("preallocate", "false", "no local files"),
		ignored("min.cleanable.dirty.ratio", "0.5", "the compactor compacts what is new each run"),
		ignored("min.compaction.lag.ms", "0", "not supported: compaction may start at once"),
		ignored("max.compaction.lag.ms", "9223372036854775807", "not supported"),
		ignored("message.timestamp.difference.max.ms", "9223372036854775807", "the broker's limit applies (records at most an hour ahead)"),
		ignored("message.timestamp.before.max.ms", "9223372036854775807", "not enforced"),
		ignored("message.timestamp.after.max.ms", "3600000", "the broker's limit: records at most an hour ahead"),
		ignored("message.downconversion.enable", "true", "only RecordBatch v2 is served"),
		ignored("leader.replication.throttled.replicas", "", "no replication"),
		ignored("follower.replication.throttled.replicas", "", "no replication"),
		ignored("remote.storage.enable", "false", "storage is remote already"),
		ignored("local.retention.ms", "-2", "no local storage"),
		ignored("local.retention.bytes", "-2", "no local storage"),
	}
}

// LookupKafkaSetting finds a setting by its Kafka name.
func LookupKafkaSetting(name string) (KafkaSetting, bool) {
	for _, k := range KafkaSettings() {
		if k.Name == name {
			return k, true
		}
	}
	return KafkaSetting{}, false
}

// SetKafka sets a setting by its Kafka name (an ignored one is accepted
// and changes nothing). The caller validates the result.
func (c *TopicConfig) SetKafka(name, value string) error {
	k, ok := LookupKafkaSetting(name)
	if !ok {
		return invalid("config", "unknown topic config %q", name)
	}
	if k.set == nil {
		return nil
	}
	if err := k.set(c, value); err != nil {
		return invalid("config."+k.Field, "%v", err)
	}
	return nil
}
