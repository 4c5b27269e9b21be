package kafkaapi_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/kafkaapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// customBalancer is round robin under a name the broker does not know, as
// Kafka Streams' assignor is.
type customBalancer struct{ kgo.GroupBalancer }

func (customBalancer) ProtocolName() string { return "custom-round-robin" }

// groupConsumer is one member of a KIP-848 group (franz-go with the
// server-side assignor), recording what it reads.
type groupConsumer struct {
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}
}

func startGroupConsumer(t *testing.T, seeds []string, group, topic string, seen func(member int, r *kgo.Record), member int, protocol []kgo.Opt) *groupConsumer {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.RetryTimeout(20 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond)}, protocol...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &groupConsumer{cl: cl, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { seen(member, r) })
			if ctx.Err() == nil && len(fs.Records()) > 0 {
				// Commit what was read, synchronously, before polling on:
				// at-least-once, and a commit from a member that lost
				// the partition is refused.
				_ = cl.CommitRecords(ctx, fs.Records()...)
			}
		}
	}()
	return g
}

func (g *groupConsumer) close() {
	g.stop()
	<-g.done
	g.cl.Close() // leaves the group
}

// TestConsumerGroups: franz-go members of one group over two nodes join
// and leave while records flow, with the consumer protocol (KIP-848) and
// with the classic protocol, eager and cooperative: every record is read,
// the group's committed offsets reach the log end, and partitions move
// only when membership changes (no two live members read one partition
// back and forth).
func TestConsumerGroups(t *testing.T) {
	for _, c := range []struct {
		name     string
		protocol []kgo.Opt
	}{
		{"consumer protocol", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}},
		{"classic eager", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
		{"classic cooperative", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		// An assignor the broker does not know: the leader member assigns
		// (Kafka's classic protocol as Kafka runs it).
		{"classic client-assigned", []kgo.Opt{kgo.Balancers(customBalancer{kgo.RoundRobinBalancer()})}},
	} {
		t.Run(c.name, func(t *testing.T) { testConsumerGroup(t, c.protocol) })
	}
}

func testConsumerGroup(t *testing.T, protocol []kgo.Opt) {
	store := offsets.New(memtable.New())
	bucket := membucket.New()
	a := startNode(t, store, bucket, kafkaapi.Config{NodeID: 1})
	b := startNode(t, store, bucket, kafkaapi.Config{NodeID: 2})
	seeds := []string{a.addr, b.addr}
	ctx := context.Background()
	const topic, group, parts = "grouped", "g", 6
	if _, err := a.b.CreateTopic(ctx, topic, parts, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	var mu sync.Mutex
	read := map[string]int{}
	// lastReader: which member read each partition last, so a partition
	// read by two members alternately (both live) shows up.
	lastReader := map[int32]int{}
	switches := map[int32]int{}
	seen := func(member int, r *kgo.Record) {
		mu.Lock()
		defer mu.Unlock()
		read[string(r.Value)]++
		if m, ok := lastReader[r.Partition]; ok && m != member {
			switches[r.Partition]++
		}
		lastReader[r.Partition] = member
	}
	total := 0
	produce := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for range n {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", total), Value: fmt.Appendf(nil, "v%d", total)})
			total++
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitRead := func(n int) {
		t.Helper()
		waitFor(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(read) >= n
		})
	}

	produce(300)
	m1 := startGroupConsumer(t, seeds, group, topic, seen, 1, protocol)
	waitRead(300)
	m2 := startGroupConsumer(t, seeds, group, topic, seen, 2, protocol)
	m3 := startGroupConsumer(t, seeds, group, topic, seen, 3, protocol)
	for range 5 {
		produce(60)
		time.Sleep(100 * time.Millisecond)
	}
	waitRead(total)
	m1.close() // leaves: its partitions move to the others
	for range 5 {
		produce(60)
		time.Sleep(100 * time.Millisecond)
	}
	waitRead(total)

	// The group sees two members, and every partition has one owner.
	adm := kadm.NewClient(prod)
	waitFor(t, func() bool {
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil || dg.Error() != nil {
			return false
		}
		owned := map[int32]int{}
		for _, m := range dg[group].Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok {
				return false
			}
			for _, t := range ca.Topics {
				for _, p := range t.Partitions {
					owned[p]++
				}
			}
		}
		return len(dg[group].Members) == 2 && len(owned) == parts
	})
	// Committed offsets reach the log end on every partition.
	waitFor(t, func() bool {
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			c, found := committed.Lookup(topic, o.Partition)
			ok = ok && found && c.At == o.Offset
		})
		return ok
	})
	// The broker's lag (what HTTP, the CLI and the console show) sees the
	// Kafka group's commits.
	lag, err := a.b.GroupLag(ctx, group)
	if err != nil || len(lag) != parts {
		t.Fatalf("lag %+v %v", lag, err)
	}
	for _, l := range lag {
		if l.Lag != 0 {
			t.Errorf("lag on %s/%d: %d", l.Topic, l.Partition, l.Lag)
		}
	}
	m2.close()
	m3.close()
	mu.Lock()
	defer mu.Unlock()
	if len(read) != total {
		t.Fatalf("read %d distinct records of %d", len(read), total)
	}
	// A partition changes readers when a member joins or leaves, not back
	// and forth: three membership changes move each partition a few times
	// at most.
	for p, n := range switches {
		if n > 4 {
			t.Errorf("partition %d changed readers %d times", p, n)
		}
	}
}

// TestOffsetsOverTheWire: a consumer outside any membership (assign)
// commits and fetches a group's offsets; the HTTP side sees the same
// offsets; a commit with a stale member epoch is refused; transaction
// coordinators are refused clearly.
func TestOffsetsOverTheWire(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "offs", 2, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	adm := e.admin(t)
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "offs", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "m"})
	commit.Add(kadm.Offset{Topic: "offs", Partition: 1, At: 0, LeaderEpoch: -1})
	res, err := adm.CommitOffsets(e.ctx, "standalone", commit)
	if err != nil || res.Error() != nil {
		t.Fatalf("commit: %v %v", err, res.Error())
	}
	got, err := adm.FetchOffsets(e.ctx, "standalone")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup("offs", 0); !ok || o.At != 5 || o.Metadata != "m" {
		t.Fatalf("fetched %+v", o)
	}
	// The broker (and so HTTP) sees the same committed offsets.
	lag, err := e.node.b.GroupLag(e.ctx, "standalone")
	if err != nil || len(lag) != 2 {
		t.Fatalf("lag %+v %v", lag, err)
	}

	// A member commits with its epoch; a stale epoch is refused.
	hb, err := e.node.b.Heartbeat(e.ctx, broker.Heartbeat{Group: "members", MemberEpoch: 0, Topics: []string{"offs"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := e.client(t)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.MemberID, oc.Generation = 9, "members", hb.MemberID, hb.MemberEpoch+5
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "offs"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 0, 1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	ocr, err := oc.RequestWith(e.ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := ocr.Topics[0].Partitions[0].ErrorCode; code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("stale epoch commit: %v", kerr.ErrorForCode(code))
	}

	// OffsetDelete: a group nobody consumes loses the offsets; one whose
	// member consumes the topic keeps them.
	del, err := adm.DeleteOffsets(e.ctx, "standalone", kadm.TopicsSet{"offs": {0: {}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, del.Error())
	}
	got, _ = adm.FetchOffsets(e.ctx, "standalone")
	if o, ok := got.Lookup("offs", 0); ok && o.At >= 0 {
		t.Fatalf("offset of partition 0 after OffsetDelete: %+v", o)
	}
	if o, ok := got.Lookup("offs", 1); !ok || o.At != 0 {
		t.Fatalf("offset of partition 1 after deleting 0's: %+v", o)
	}
	del, _ = adm.DeleteOffsets(e.ctx, "members", kadm.TopicsSet{"offs": {0: {}}})
	if err, _ := del.Lookup("offs", 0); !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("deleting a consumed topic's offsets: %v", err)
	}

	// A group is of one kind at a time: a member with an assignor only it
	// knows cannot join a group the broker assigns.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Version, jg.Group, jg.MemberID, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = 9, "members", "m-1", "consumer", 10000, 10000
	jp := kmsg.NewJoinGroupRequestProtocol()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"offs"}
	jp.Name, jp.Metadata = "custom", meta.AppendTo(nil)
	jg.Protocols = append(jg.Protocols, jp)
	jgr, err := jg.RequestWith(e.ctx, cl)
	if err != nil || jgr.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("a client-assigned join of a broker-assigned group: %v %v", err, kerr.ErrorForCode(jgr.ErrorCode))
	}

	// Listing and describing.
	groups, err := adm.ListGroups(e.ctx)
	if _, ok := groups["members"]; err != nil || !ok {
		t.Fatalf("groups %v %v", groups, err)
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKeys = 1, []string{"tx"}
	fcr, err := fc.RequestWith(e.ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := fcr.Coordinators[0].ErrorCode; code == 0 || kerr.IsRetriable(kerr.ErrorForCode(code)) {
		t.Fatalf("transaction coordinator: %v", kerr.ErrorForCode(code))
	}
}
