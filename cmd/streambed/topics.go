package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/offsets"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runTopics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "topics", []command{
		{"list", "list topics with partitions and sizes", topicsList},
		{"create", "create a topic: create NAME [--partitions N] [--config k=v]...", topicsCreate},
		{"describe", "show a topic's config and partitions", topicsDescribe},
		{"alter", "grow partitions or change config: alter NAME [--partitions N] [--config k=v]...", topicsAlter},
		{"delete", "delete a topic and its data", topicsDelete},
	}, args, stdout, stderr)
}

func topicsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics list", "topics list [flags]", stderr)
	ep := endpointFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return badArgs(fs, "unexpected argument %q", pos[0])
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	var topics []api.Topic
	for t, err := range c.Topics(ctx) {
		if err != nil {
			return err
		}
		topics = append(topics, t)
	}
	// The JSON carries what the table shows: each topic with its records
	// and bytes.
	type listed struct {
		api.Topic
		Records int64 `json:"records"`
		Bytes   int64 `json:"bytes"`
	}
	out := []listed{}
	for _, t := range topics {
		parts, err := c.Partitions(ctx, t.Name)
		if err != nil {
			return err
		}
		l := listed{Topic: t}
		for _, p := range parts {
			l.Records += p.LogEndOffset - p.LogStartOffset
			l.Bytes += p.Bytes
		}
		out = append(out, l)
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"topics": out})
	}
	tb := newTable(stdout, "TOPIC", "PARTITIONS", "RECORDS", "SIZE", "RETENTION", "CLEANUP")
	for _, t := range out {
		tb.row(t.Name, t.Partitions, t.Records, humanBytes(t.Bytes), retention(t.Config), deref(t.Config.CleanupPolicy, "delete"))
	}
	return tb.flush()
}

func topicsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics create", "topics create NAME [flags]", stderr)
	ep := endpointFlags(fs)
	parts := fs.Int("partitions", 1, "number of partitions")
	var cfgs multiFlag
	fs.Var(&cfgs, "config", "topic config key=value, repeatable: "+configKeys)
	asJSON := fs.Bool("json", false, "print the created topic as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return badArgs(fs, "need exactly one topic name")
	}
	cfg, err := parseConfig(cfgs)
	if err != nil {
		return badArgs(fs, "%v", err)
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.CreateTopic(ctx, pos[0], int32(*parts), cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, t)
	}
	_, err = fmt.Fprintf(stdout, "created topic %s with %s\n", t.Name, plural(int64(t.Partitions), "partition"))
	return err
}

func topicsAlter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics alter", "topics alter NAME [flags]", stderr)
	ep := endpointFlags(fs)
	parts := fs.Int("partitions", 0, "new partition count (can only grow)")
	var cfgs multiFlag
	fs.Var(&cfgs, "config", "topic config key=value, repeatable: "+configKeys)
	asJSON := fs.Bool("json", false, "print the topic as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return badArgs(fs, "need exactly one topic name")
	}
	if *parts == 0 && len(cfgs) == 0 {
		return badArgs(fs, "nothing to change: give --partitions or --config")
	}
	cfg, err := parseConfig(cfgs)
	if err != nil {
		return badArgs(fs, "%v", err)
	}
	var np *int32
	if *parts != 0 {
		n := int32(*parts)
		np = &n
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.UpdateTopic(ctx, pos[0], np, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, t)
	}
	_, err = fmt.Fprintf(stdout, "topic %s: %s, retention %s, cleanup %s\n", t.Name, plural(int64(t.Partitions), "partition"), retention(t.Config), deref(t.Config.CleanupPolicy, "delete"))
	return err
}

func topicsDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics describe", "topics describe NAME [flags]", stderr)
	ep := endpointFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return badArgs(fs, "need exactly one topic name")
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.Topic(ctx, pos[0])
	if err != nil {
		return err
	}
	parts, err := c.Partitions(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, struct {
			api.Topic
			PartitionInfo []api.Partition `json:"partition_info"`
		}{t, parts})
	}
	fmt.Fprintf(stdout, "Topic:      %s\nID:         %s\nPartitions: %d\nCreated:    %s\n", t.Name, t.ID, t.Partitions, time.UnixMilli(t.CreatedMs).UTC().Format(time.RFC3339))
	fmt.Fprintln(stdout, "Config:")
	ct := newTable(stdout, "  KEY", "VALUE")
	for _, kv := range configRows(t.Config) {
		ct.row("  "+kv[0], kv[1])
	}
	if err := ct.flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tb := newTable(stdout, "PARTITION", "LOG-START", "LOG-END", "RECORDS", "SIZE", "LAST-APPEND")
	for _, p := range parts {
		last := "-"
		if p.LastAppendMs > 0 {
			last = time.UnixMilli(p.LastAppendMs).UTC().Format(time.RFC3339)
		}
		tb.row(p.Partition, p.LogStartOffset, p.LogEndOffset, p.LogEndOffset-p.LogStartOffset, humanBytes(p.Bytes), last)
	}
	return tb.flush()
}

func topicsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics delete", "topics delete NAME... [flags]", stderr)
	ep := endpointFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) == 0 {
		return badArgs(fs, "need a topic name")
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	for _, name := range pos {
		if err := c.DeleteTopic(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted topic %s\n", name)
	}
	return nil
}

const configKeys = "retention.ms, retention.bytes, cleanup.policy, max.record.bytes, delete.retention.ms, timestamp.type, segment.bytes"

// parseConfig reads key=value pairs, accepting Kafka's dotted names and
// the API's underscored ones; -1 means unlimited retention, as in Kafka.
func parseConfig(kvs []string) (*api.TopicConfig, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	cfg := &api.TopicConfig{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--config %q: want key=value", kv)
		}
		// Errors name the key as typed; Kafka's names (max.message.bytes,
		// message.timestamp.type, ...) map to the API's.
		orig := strings.TrimSpace(k)
		k = strings.ReplaceAll(orig, ".", "_")
		if ks, ok := offsets.LookupKafkaSetting(orig); ok && ks.Field != "" {
			k = ks.Field
			if k == "timestamp_type" {
				switch v {
				case "CreateTime":
					v = "create"
				case "LogAppendTime":
					v = "log_append"
				}
			}
		}
		num := func() (*int64, error) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--config %s: %q is not an integer", orig, v)
			}
			return &n, nil
		}
		var err error
		switch k {
		case "retention_ms":
			cfg.RetentionMs, err = num()
		case "retention_bytes":
			cfg.RetentionBytes, err = num()
		case "max_record_bytes":
			cfg.MaxRecordBytes, err = num()
		case "delete_retention_ms":
			cfg.DeleteRetentionMs, err = num()
		case "segment_bytes":
			cfg.SegmentBytes, err = num()
		case "cleanup_policy":
			cfg.CleanupPolicy = &v
		case "timestamp_type":
			cfg.TimestampType = &v
		default:
			return nil, fmt.Errorf("--config: unknown key %q (known: %s)", orig, configKeys)
		}
		if err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func configRows(c api.TopicConfig) [][2]string {
	var rows [][2]string
	add := func(k string, v *int64) {
		if v != nil {
			rows = append(rows, [2]string{k, strconv.FormatInt(*v, 10)})
		}
	}
	add("retention.ms", c.RetentionMs)
	add("retention.bytes", c.RetentionBytes)
	if c.CleanupPolicy != nil {
		rows = append(rows, [2]string{"cleanup.policy", *c.CleanupPolicy})
	}
	add("delete.retention.ms", c.DeleteRetentionMs)
	add("max.record.bytes", c.MaxRecordBytes)
	add("segment.bytes", c.SegmentBytes)
	if c.TimestampType != nil {
		rows = append(rows, [2]string{"timestamp.type", *c.TimestampType})
	}
	return rows
}

func retention(c api.TopicConfig) string {
	var parts []string
	if c.RetentionMs != nil && *c.RetentionMs >= 0 {
		parts = append(parts, (time.Duration(*c.RetentionMs) * time.Millisecond).String())
	}
	if c.RetentionBytes != nil && *c.RetentionBytes >= 0 {
		parts = append(parts, humanBytes(*c.RetentionBytes))
	}
	if len(parts) == 0 {
		return "forever"
	}
	return strings.Join(parts, "/")
}

func deref(s *string, def string) string {
	if s == nil || *s == "" {
		return def
	}
	return *s
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
