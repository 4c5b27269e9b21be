package offsetstest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
)

func createTopic(t *testing.T, e *env, name string, parts int32) offsets.Topic {
	t.Helper()
	tp, err := e.store.CreateTopic(e.ctx, name, parts, offsets.DefaultTopicConfig())
	must(t, err)
	return tp
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

var topicCases = map[string]func(*testing.T, *env){
	"GrowthRefusesStaleKeyedAppends": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "grow", 4)
		commitN(t, e, tp, 1, 1) // a head that exists before the increase
		grown, err := e.store.IncreasePartitions(e.ctx, "grow", 16)
		must(t, err)
		keyed := func(partitioned int32, p int32) offsets.AppendResult {
			a := app(p, 1)
			a.Partitions = partitioned
			view := tp // the committer's possibly stale view of the topic
			if p >= tp.Partitions {
				view = grown
			}
			res, err := e.store.Commit(e.ctx, view, offsets.ObjectMeta{Key: objectKey(), Size: 100}, []offsets.Append{a})
			must(t, err)
			return res[0]
		}
		// Partitioned by key for 4 (a cache older than the increase):
		// refused, on a head that existed and on one that did not.
		for _, p := range []int32{1, 2} {
			if r := keyed(4, p); !errors.Is(r.Err, offsets.ErrStalePartitionCount) || r.Partitions != 16 {
				t.Fatalf("partition %d, partitioned for 4: %+v", p, r)
			}
		}
		// For 16, or not by key: accepted, and the count is reported.
		if r := keyed(16, 1); r.Err != nil || r.Partitions != 16 {
			t.Fatalf("partitioned for 16: %+v", r)
		}
		if r := keyed(0, 2); r.Err != nil {
			t.Fatalf("not partitioned by key: %+v", r)
		}
		if r := keyed(16, 15); r.Err != nil {
			t.Fatalf("a new partition: %+v", r)
		}
		if grown.Partitions != 16 {
			t.Fatalf("grown %+v", grown)
		}
	},
	"CreateDescribe": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "orders", 3)
		if tp.ID == "" || tp.Partitions != 3 || tp.Config.RetentionMs != offsets.DefaultRetention {
			t.Fatalf("created %+v", tp)
		}
		got, err := e.store.Topic(e.ctx, "orders")
		must(t, err)
		if got.ID != tp.ID || got.Partitions != 3 || got.Config != tp.Config {
			t.Fatalf("described %+v, created %+v", got, tp)
		}
		_, err = e.store.CreateTopic(e.ctx, "orders", 5, offsets.DefaultTopicConfig())
		wantErr(t, err, offsets.ErrTopicExists)
		_, err = e.store.Topic(e.ctx, "nope")
		wantErr(t, err, offsets.ErrUnknownTopic)
	},
	"BadInputChangesNothing": func(t *testing.T, e *env) {
		names := []string{"", ".", "..", "has space", "slash/y", strings.Repeat("x", 250), "é"}
		for _, n := range names {
			_, err := e.store.CreateTopic(e.ctx, n, 1, offsets.DefaultTopicConfig())
			wantErr(t, err, offsets.ErrInvalid)
		}
		for _, p := range []int32{0, -1, offsets.MaxPartitions + 1} {
			_, err := e.store.CreateTopic(e.ctx, "ok", p, offsets.DefaultTopicConfig())
			wantErr(t, err, offsets.ErrInvalid)
		}
		bad := []func(*offsets.TopicConfig){
			func(c *offsets.TopicConfig) { c.CleanupPolicy = "shred" },
			func(c *offsets.TopicConfig) { c.RetentionMs = -2 },
			func(c *offsets.TopicConfig) { c.RetentionBytes = 0 },
			func(c *offsets.TopicConfig) { c.MaxRecordBytes = 0 },
			func(c *offsets.TopicConfig) { c.TimestampType = "wall" },
			func(c *offsets.TopicConfig) { c.SegmentBytes = 10 },
		}
		for i, f := range bad {
			cfg := offsets.DefaultTopicConfig()
			f(&cfg)
			_, err := e.store.CreateTopic(e.ctx, "ok", 1, cfg)
			if !errors.Is(err, offsets.ErrInvalid) || !strings.Contains(err.Error(), "config.") {
				t.Fatalf("bad config %d: %v (want ErrInvalid naming the field)", i, err)
			}
		}
		topics, _, err := e.store.ListTopics(e.ctx, "", 0)
		must(t, err)
		if len(topics) != 0 {
			t.Fatalf("bad input created %d topics", len(topics))
		}
	},
	"ListPaginated": func(t *testing.T, e *env) {
		for i := range 7 {
			createTopic(t, e, fmt.Sprintf("t%d", i), 1)
		}
		var all []string
		after := ""
		for pages := 0; ; pages++ {
			topics, next, err := e.store.ListTopics(e.ctx, after, 3)
			must(t, err)
			for _, tp := range topics {
				all = append(all, tp.Name)
			}
			if next == "" {
				break
			}
			after = next
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
		}
		if fmt.Sprint(all) != "[t0 t1 t2 t3 t4 t5 t6]" {
			t.Fatalf("listed %v", all)
		}
	},
	"PartitionsGrowNeverShrink": func(t *testing.T, e *env) {
		createTopic(t, e, "grow", 3)
		tp, err := e.store.IncreasePartitions(e.ctx, "grow", 5)
		must(t, err)
		if tp.Partitions != 5 {
			t.Fatalf("partitions %d", tp.Partitions)
		}
		_, err = e.store.IncreasePartitions(e.ctx, "grow", 4)
		if !errors.Is(err, offsets.ErrInvalid) || !strings.Contains(err.Error(), "cannot shrink") {
			t.Fatalf("shrink: %v", err)
		}
		if _, err := e.store.IncreasePartitions(e.ctx, "grow", 5); err != nil {
			t.Fatalf("same count should be a no-op: %v", err)
		}
		got, _ := e.store.Topic(e.ctx, "grow")
		if got.Partitions != 5 {
			t.Fatalf("after refused shrink: %d partitions", got.Partitions)
		}
		states, err := e.store.Partitions(e.ctx, got)
		must(t, err)
		if len(states) != 5 || states[4].LogEnd != 0 {
			t.Fatalf("new partition state %+v", states)
		}
		_, err = e.store.IncreasePartitions(e.ctx, "missing", 5)
		wantErr(t, err, offsets.ErrUnknownTopic)
	},
	"AlterConfig": func(t *testing.T, e *env) {
		createTopic(t, e, "cfg", 1)
		cfg := offsets.DefaultTopicConfig()
		cfg.RetentionMs, cfg.CleanupPolicy = 60000, "delete,compact"
		tp, err := e.store.AlterTopicConfig(e.ctx, "cfg", cfg)
		must(t, err)
		if tp.Config.RetentionMs != 60000 || tp.Config.CleanupPolicy != "compact,delete" {
			t.Fatalf("altered %+v", tp.Config)
		}
		cfg.MaxRecordBytes = -5
		_, err = e.store.AlterTopicConfig(e.ctx, "cfg", cfg)
		wantErr(t, err, offsets.ErrInvalid)
		got, _ := e.store.Topic(e.ctx, "cfg")
		if got.Config.MaxRecordBytes != 1<<20 {
			t.Fatal("refused alter changed the config")
		}
	},
	"DeleteAndRecreate": func(t *testing.T, e *env) {
		old := createTopic(t, e, "gone", 2)
		commitN(t, e, old, 0, 5)
		must(t, e.store.DeleteTopic(e.ctx, "gone"))
		_, err := e.store.Topic(e.ctx, "gone")
		wantErr(t, err, offsets.ErrUnknownTopic)
		wantErr(t, e.store.DeleteTopic(e.ctx, "gone"), offsets.ErrUnknownTopic)
		// A writer with a stale cached topic cannot append any more.
		res, err := e.store.Commit(e.ctx, old, offsets.ObjectMeta{Key: "late", Size: 10}, []offsets.Append{{Partition: 0, Records: 1, Length: 10, ExpectedOffset: -1}})
		must(t, err)
		wantErr(t, res[0].Err, offsets.ErrUnknownTopic)
		fresh := createTopic(t, e, "gone", 2)
		if fresh.ID == old.ID {
			t.Fatal("re-created topic reuses the old id")
		}
		st, err := e.store.Partitions(e.ctx, fresh, 0)
		must(t, err)
		if st[0].LogEnd != 0 {
			t.Fatalf("re-created topic sees old data: %+v", st[0])
		}
		del, err := e.store.DeletedTopics(e.ctx, 0)
		must(t, err)
		if len(del) != 1 || del[0].ID != old.ID || del[0].Partitions != 2 {
			t.Fatalf("cleanup queue %+v", del)
		}
	},
}
