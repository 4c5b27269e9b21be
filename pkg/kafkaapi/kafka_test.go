package kafkaapi_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/kafkaapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// node is one Kafka listener over a broker.
type node struct {
	addr string
	b    *broker.Broker
	stop func()
}

// startNode serves b's storage on a loopback port.
func startNode(t *testing.T, store *offsets.Store, bucket segments.Bucket, cfg kafkaapi.Config) *node {
	t.Helper()
	b := broker.New(store, bucket, broker.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := kafkaapi.New(b, cfg)
	go func() { done <- s.Serve(ctx, ln) }()
	n := &node{addr: ln.Addr().String(), b: b}
	n.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			n.stop()
		}
	})
	return n
}

// env is a store and one node.
type env struct {
	store  *offsets.Store
	bucket segments.Bucket
	node   *node
	ctx    context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := offsets.New(memtable.New())
	bucket := membucket.New()
	e := &env{store: store, bucket: bucket, ctx: context.Background()}
	e.node = startNode(t, store, bucket, kafkaapi.Config{NodeID: -1})
	return e
}

func (e *env) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.node.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (e *env) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(e.client(t))
}

func TestProduceAndConsume(t *testing.T) {
	e := newEnv(t)
	adm := e.admin(t)
	if _, err := adm.CreateTopic(e.ctx, 3, -1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		prod := e.client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("orders"))
		var recs []*kgo.Record
		for i := range 50 {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}})
		}
		if err := prod.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cons := e.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart()}}))
	got := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 50 || sum(got) < 250 {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d records", sum(got))
		}
		fs := cons.PollFetches(e.ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Headers) != 1 || string(r.Headers[0].Value) != "x" {
				t.Errorf("headers %+v", r.Headers)
			}
			got[string(r.Key)+"="+string(r.Value)]++
		})
	}
	if len(got) != 50 || sum(got) != 250 {
		t.Fatalf("%d distinct records, %d in all", len(got), sum(got))
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func produceN(t *testing.T, cl *kgo.Client, topic string, p int32, n int, ts time.Time) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "v%d", i), Timestamp: ts.Add(time.Duration(i) * time.Second)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestListOffsetsAndDeleteRecords(t *testing.T) {
	e := newEnv(t)
	adm := e.admin(t)
	if _, err := adm.CreateTopic(e.ctx, 1, 1, nil, "lo"); err != nil {
		t.Fatal(err)
	}
	prod := e.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produceN(t, prod, "lo", 0, 10, base)
	start, err := adm.ListStartOffsets(e.ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(e.ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("lo", 0); o.Offset != 0 {
		t.Fatalf("start %+v", o)
	}
	if o, _ := end.Lookup("lo", 0); o.Offset != 10 {
		t.Fatalf("end %+v", o)
	}
	byTime, err := adm.ListOffsetsAfterMilli(e.ctx, base.Add(3500*time.Millisecond).UnixMilli(), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("lo", 0); o.Offset != 4 || o.Timestamp != base.Add(4*time.Second).UnixMilli() {
		t.Fatalf("after 3.5 s: %+v", o)
	}
	maxTs, err := adm.ListMaxTimestampOffsets(e.ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := maxTs.Lookup("lo", 0); o.Offset != 9 {
		t.Fatalf("max timestamp: %+v", o)
	}
	future, err := adm.ListOffsetsAfterMilli(e.ctx, time.Now().Add(time.Hour).UnixMilli(), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := future.Lookup("lo", 0); o.Offset != -1 && o.Offset != 10 {
		t.Fatalf("after the last record: %+v", o)
	}

	// DeleteRecords moves the log start, also into the middle of a batch.
	del, err := adm.DeleteRecords(e.ctx, kadm.Offsets{"lo": {0: {Topic: "lo", Partition: 0, At: 4}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("delete records: %v %v", err, del.Error())
	}
	start, _ = adm.ListStartOffsets(e.ctx, "lo")
	if o, _ := start.Lookup("lo", 0); o.Offset != 4 {
		t.Fatalf("start after delete %+v", o)
	}
	// A consumer at the start reads from 4.
	cons := e.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"lo": {0: kgo.NewOffset().AtStart()}}))
	fs := cons.PollFetches(e.ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) == 0 || recs[0].Offset != 4 || len(recs) != 6 {
		t.Fatalf("read %d records from offset %d", len(recs), recs[0].Offset)
	}
	// Beyond the end is refused.
	del, _ = adm.DeleteRecords(e.ctx, kadm.Offsets{"lo": {0: {Topic: "lo", Partition: 0, At: 11}}})
	if del.Error() == nil {
		t.Fatal("deleting past the log end was accepted")
	}
}

func TestTopicAdmin(t *testing.T) {
	e := newEnv(t)
	adm := e.admin(t)
	ret := "3600000"
	policy := "compact"
	created, err := adm.CreateTopic(e.ctx, 2, 3, map[string]*string{"retention.ms": &ret, "cleanup.policy": &policy, "min.insync.replicas": new("2")}, "adm")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if _, err := adm.CreateTopic(e.ctx, 2, 1, nil, "adm"); err == nil {
		t.Fatal("created a topic twice")
	}
	bad, _ := adm.CreateTopic(e.ctx, 1, 1, map[string]*string{"retention.ms": new("soon")}, "bad-config")
	if bad.Err == nil {
		t.Fatal("a bad config was accepted")
	}
	unknown, _ := adm.CreateTopic(e.ctx, 1, 1, map[string]*string{"no.such.config": new("1")}, "bad-config")
	if unknown.Err == nil {
		t.Fatal("an unknown config was accepted")
	}
	validate, err := adm.ValidateCreateTopics(e.ctx, 4, 1, nil, "only-validated")
	if err != nil || validate.Error() != nil {
		t.Fatalf("validate only: %v %v", err, validate.Error())
	}
	if list, _ := adm.ListTopics(e.ctx, "only-validated"); list.Has("only-validated") {
		t.Fatal("validate_only created the topic")
	}

	rc, err := adm.DescribeTopicConfigs(e.ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := rc.On("adm", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "1048576", "message.timestamp.type": "CreateTime"}
	for _, c := range cfgs.Configs {
		if w, ok := want[c.Key]; ok && (c.Value == nil || *c.Value != w) {
			t.Errorf("%s = %v, want %s", c.Key, c.MaybeValue(), w)
		}
		delete(want, c.Key)
	}
	if len(want) > 0 {
		t.Errorf("configs not described: %v", want)
	}

	// Incremental alter: set one, delete (reset) another.
	_, err = adm.AlterTopicConfigs(e.ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: new("LogAppendTime")}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, "adm")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := e.node.b.Topic(e.ctx, "adm")
	if err != nil || tp.Config.TimestampType != "log_append" || tp.Config.RetentionMs != offsets.DefaultRetention || tp.Config.CleanupPolicy != "compact" {
		t.Fatalf("after incremental alter: %+v %v", tp.Config, err)
	}
	// Non-incremental alter replaces all.
	if _, err := adm.AlterTopicConfigsState(e.ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: new("5000000")}}, "adm"); err != nil {
		t.Fatal(err)
	}
	tp, _ = e.node.b.Topic(e.ctx, "adm")
	if tp.Config.RetentionBytes != 5000000 || tp.Config.CleanupPolicy != "delete" {
		t.Fatalf("after alter: %+v", tp.Config)
	}

	// Partitions grow, never shrink.
	if r, err := adm.UpdatePartitions(e.ctx, 5, "adm"); err != nil || r.Error() != nil {
		t.Fatalf("grow: %v %v", err, r.Error())
	}
	if r, _ := adm.UpdatePartitions(e.ctx, 2, "adm"); r.Error() == nil {
		t.Fatal("shrinking was accepted")
	}
	md, err := adm.Metadata(e.ctx, "adm")
	if err != nil || len(md.Topics["adm"].Partitions) != 5 {
		t.Fatalf("metadata after growing: %v %v", md.Topics["adm"], err)
	}
	if md.Topics["adm"].ID.String() == (kadm.TopicID{}).String() {
		t.Fatal("no topic id")
	}

	if _, err := adm.DeleteTopic(e.ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	if list, _ := adm.ListTopics(e.ctx); list.Has("adm") {
		t.Fatal("deleted topic still listed")
	}
}

// TestTwoNodesOneStore: two nodes over one store serve one client: the
// metadata lists both, partitions are spread over them, and when one
// stops mid-stream the client carries on through the other, every record
// read once, in order.
func TestTwoNodesOneStore(t *testing.T) {
	t.Run("memory", func(t *testing.T) { twoNodesOneStore(t, offsets.New(memtable.New()), membucket.New()) })
	t.Run("minio+moto", func(t *testing.T) {
		table, bucket, _ := testenv.MinIOMoto(t, "kafka-two", 0)
		twoNodesOneStore(t, offsets.New(table), bucket)
	})
}

func twoNodesOneStore(t *testing.T, store *offsets.Store, bucket segments.Bucket) {
	a := startNode(t, store, bucket, kafkaapi.Config{NodeID: 1})
	b := startNode(t, store, bucket, kafkaapi.Config{NodeID: 2})
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.addr, b.addr), kgo.RetryTimeout(20*time.Second), kgo.MetadataMinAge(100*time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "two"); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 2 {
		t.Fatalf("brokers %v", md.Brokers)
	}
	leaders := map[int32]int{}
	for _, p := range md.Topics["two"].Partitions {
		leaders[p.Leader]++
	}
	if leaders[1] == 0 || leaders[2] == 0 {
		t.Fatalf("partitions all on one node: %v", leaders)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(a.addr, b.addr), kgo.RetryTimeout(20*time.Second), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"two": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(), 3: kgo.NewOffset().AtStart(),
			4: kgo.NewOffset().AtStart(), 5: kgo.NewOffset().AtStart(), 6: kgo.NewOffset().AtStart(), 7: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := map[int32]int64{}
	read := 0
	consume := func(until int) {
		deadline := time.Now().Add(20 * time.Second)
		for read < until {
			if time.Now().After(deadline) {
				t.Fatalf("read %d of %d", read, until)
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			fs := cons.PollFetches(pctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, expected %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				read++
			})
		}
	}
	for p := range int32(8) {
		produceN(t, cl, "two", p, 20, time.Now())
	}
	consume(160)
	a.stop()
	for p := range int32(8) {
		produceN(t, cl, "two", p, 20, time.Now())
	}
	consume(320)
	md, err = adm.Metadata(ctx, "two")
	if err != nil || len(md.Brokers) != 1 || md.Brokers[0].NodeID != 2 {
		t.Fatalf("after a node stopped: %v %v", md.Brokers, err)
	}
}

// TestHTTPProducedRecordsReadOverKafka: records produced through the
// broker's own API (as HTTP does, gzip by default) read back through the
// Kafka listener, and Kafka-produced ones through the broker's Fetch.
func TestHTTPProducedRecordsReadOverKafka(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "mixed", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var recs []segments.Record
	for i := range 5 {
		recs = append(recs, segments.Record{Timestamp: broker.NoTimestamp, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "http-%d", i)})
	}
	if _, err := e.node.b.ProducePartition(e.ctx, "mixed", 0, broker.PartitionProduce{Records: recs, ExpectedOffset: -1}); err != nil {
		t.Fatal(err)
	}
	produceN(t, e.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.Lz4Compression())), "mixed", 0, 5, time.Now())
	cons := e.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"mixed": {0: kgo.NewOffset().AtStart()}}))
	var vals []string
	for len(vals) < 10 {
		fs := cons.PollFetches(e.ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
	}
	if vals[0] != "http-0" || vals[4] != "http-4" || vals[5] != "v0" {
		t.Fatalf("values %v", vals)
	}
	res, err := e.node.b.Fetch(e.ctx, broker.FetchRequest{Topic: "mixed", Partition: 0, Offset: 0})
	if err != nil || len(res.Records) != 10 || string(res.Records[9].Value) != "v4" {
		t.Fatalf("broker fetch: %d records %v", len(res.Records), err)
	}
}
