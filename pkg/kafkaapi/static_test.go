package kafkaapi_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/offsets"
)

// staticMember is a franz-go consumer with a group.instance.id, tracking
// the partitions it holds and every change to them.
type staticMember struct {
	cl      *kgo.Client
	mu      sync.Mutex
	held    map[int32]bool
	changes int
	stop    context.CancelFunc
	done    chan struct{}
}

func startStaticMember(t *testing.T, seeds []string, group, topic, instance string, protocol []kgo.Opt) *staticMember {
	t.Helper()
	m := &staticMember{held: map[int32]bool{}, done: make(chan struct{})}
	track := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				m.held[p] = add
				m.changes++
			}
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.InstanceID(instance), kgo.SessionTimeout(30 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.OnPartitionsAssigned(track(true)), kgo.OnPartitionsRevoked(track(false)), kgo.OnPartitionsLost(track(false)),
		kgo.RetryTimeout(20 * time.Second)}, protocol...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	return m
}

// partitions is what the member holds now, sorted.
func (m *staticMember) partitions() ([]int32, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p, ok := range m.held {
		if ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, m.changes
}

// close ends the process the way a static member's does: without leaving.
func (m *staticMember) close() {
	m.stop()
	<-m.done
	m.cl.Close()
}

// TestStaticMembership: two static members share four partitions. One
// process closes and a new one with the same group.instance.id starts
// within the session timeout: it gets the same partitions back, and the
// other member sees no rebalance at all. The replaced process's member id
// is fenced (FENCED_INSTANCE_ID) on heartbeats and commits.
func TestStaticMembership(t *testing.T) {
	for _, c := range []struct {
		name     string
		protocol []kgo.Opt
		classic  bool
	}{
		{"classic eager", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}, true},
		{"classic cooperative", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}, true},
		{"consumer protocol", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}, false},
		// The leader member assigns (Kafka Streams' way): a follower's
		// restart does not rebalance either.
		{"classic client-assigned", []kgo.Opt{kgo.Balancers(customBalancer{kgo.RoundRobinBalancer()})}, true},
	} {
		t.Run(c.name, func(t *testing.T) { testStaticMembership(t, c.protocol, c.classic) })
	}
}

func testStaticMembership(t *testing.T, protocol []kgo.Opt, classic bool) {
	e := newEnv(t)
	const topic, group = "static", "sg"
	if _, err := e.node.b.CreateTopic(e.ctx, topic, 4, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	seeds := []string{e.node.addr}
	// The steady member joins first, so it is the group's leader where a
	// member assigns (a leader's restart rebalances: see the docs).
	b := startStaticMember(t, seeds, group, topic, "steady", protocol)
	defer b.close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ps, _ := b.partitions(); len(ps) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first member never got the 4 partitions")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a := startStaticMember(t, seeds, group, topic, "restarts", protocol)
	settled := func(what string, ms ...*staticMember) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			all, empty := map[int32]int{}, false
			for _, m := range ms {
				ps, _ := m.partitions()
				empty = empty || len(ps) == 0
				for _, p := range ps {
					all[p]++
				}
			}
			if len(all) == 4 && !empty && !slices.ContainsFunc(slices.Collect(maps.Values(all)), func(n int) bool { return n > 1 }) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the members never shared the 4 partitions, each holding some", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	settled("first join", a, b)
	// The first rounds may still be finishing: measure from a quiet group.
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, before := b.partitions()
		time.Sleep(1500 * time.Millisecond)
		if _, after := b.partitions(); after == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group never settled after the first joins")
		}
	}
	aParts, _ := a.partitions()
	bParts, bChanges := b.partitions()
	oldID, oldGen := a.cl.GroupMetadata()
	a.close()

	a2 := startStaticMember(t, seeds, group, topic, "restarts", protocol)
	defer a2.close()
	settled("restart", a2, b)
	if got, _ := a2.partitions(); !slices.Equal(got, aParts) {
		t.Fatalf("the restarted instance holds %v, its first process held %v", got, aParts)
	}
	// The other member saw nothing happen, however long we watch.
	time.Sleep(2 * time.Second)
	if got, changes := b.partitions(); !slices.Equal(got, bParts) || changes != bChanges {
		t.Fatalf("the other member went from %v to %v (%d assignment changes, %d before): a rebalance", bParts, got, changes, bChanges)
	}
	newID, _ := a2.cl.GroupMetadata()
	if newID == oldID || newID == "" {
		t.Fatalf("the new process has member id %q, the old had %q", newID, oldID)
	}

	// The replaced process is a zombie now: fenced.
	cl := e.client(t)
	inst := "restarts"
	if classic {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = group, oldID, oldGen, &inst
		resp, err := hb.RequestWith(e.ctx, cl)
		if err != nil || resp.ErrorCode != kerr.FencedInstanceID.Code {
			t.Fatalf("heartbeat of the replaced process: %+v %v", resp, err)
		}
	} else {
		hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		hb.Group, hb.MemberID, hb.MemberEpoch, hb.InstanceID = group, oldID, oldGen, &inst
		resp, err := hb.RequestWith(e.ctx, cl)
		if err != nil || resp.ErrorCode != kerr.FencedInstanceID.Code {
			t.Fatalf("heartbeat of the replaced process: %+v %v", resp, err)
		}
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.MemberID, oc.Generation, oc.InstanceID = group, oldID, oldGen, &inst
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = topic
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = aParts[0], 1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	resp, err := oc.RequestWith(e.ctx, cl)
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("commit of the replaced process: %+v %v", resp, err)
	}
}
