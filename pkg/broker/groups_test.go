package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// fakeClock is shared by the broker and the store of a group test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type groupEnv struct {
	b     *Broker
	clock *fakeClock
	ctx   context.Context
}

func newGroupEnv(t *testing.T, table offsets.Table) *groupEnv {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	store := offsets.New(table, offsets.WithClock(clock.now))
	b := New(store, membucket.New(), Config{Now: clock.now, PollMin: time.Millisecond, PollMax: 5 * time.Millisecond})
	return &groupEnv{b: b, clock: clock, ctx: context.Background()}
}

// GroupSuite runs the consumer-group protocol tests on a table.
func GroupSuite(t *testing.T, newTable func(t *testing.T) offsets.Table) {
	t.Run("JoinRebalanceNeverOverlaps", func(t *testing.T) { t.Parallel(); testJoinRebalance(t, newGroupEnv(t, newTable(t))) })
	t.Run("ExpiryMovesPartitionsAndFencesZombie", func(t *testing.T) { t.Parallel(); testExpiry(t, newGroupEnv(t, newTable(t))) })
	t.Run("DeliveryWithAKilledMember", func(t *testing.T) { t.Parallel(); testDelivery(t, newGroupEnv(t, newTable(t))) })
	t.Run("PartitionIncreaseReachesGroup", func(t *testing.T) { t.Parallel(); testPartitionIncrease(t, newGroupEnv(t, newTable(t))) })
	t.Run("LeaveAndRejoin", func(t *testing.T) { t.Parallel(); testLeaveRejoin(t, newGroupEnv(t, newTable(t))) })
	t.Run("NewPartitionsStartAtEarliest", func(t *testing.T) { t.Parallel(); testNewPartitionsEarliest(t, newGroupEnv(t, newTable(t))) })
	t.Run("LoneMemberRejoinsAfterExpiry", func(t *testing.T) { t.Parallel(); testRejoinAfterExpiry(t, newGroupEnv(t, newTable(t))) })
	t.Run("ConcurrentHeartbeatsNeverOverlap", func(t *testing.T) { t.Parallel(); testConcurrent(t, newGroupEnv(t, newTable(t))) })
}

func TestGroupsMemtable(t *testing.T) {
	GroupSuite(t, func(t *testing.T) offsets.Table { return memtable.New() })
}

// member is a simulated consumer that follows the protocol: it owns what
// its last response assigned and reports exactly that.
type member struct {
	id     string
	epoch  int32
	owned  []offsets.TopicPartitions
	topics []string
}

func (g *groupEnv) beat(t *testing.T, m *member) HeartbeatResult {
	t.Helper()
	h := Heartbeat{Group: "g", MemberID: m.id, MemberEpoch: m.epoch, Topics: m.topics, SessionTimeout: 5 * time.Second, Owned: m.owned}
	if m.epoch == 0 {
		h.Owned = nil
	}
	a, err := g.b.Heartbeat(g.ctx, h)
	if err != nil {
		t.Fatalf("heartbeat of %s: %v", m.id, err)
	}
	m.epoch, m.owned = a.MemberEpoch, a.Assignment
	if m.owned == nil {
		m.owned = []offsets.TopicPartitions{}
	}
	return a
}

// checkDisjoint asserts that no partition is owned by two members now.
func checkDisjoint(t *testing.T, members []*member) {
	t.Helper()
	seen := map[tp]string{}
	for _, m := range members {
		for _, x := range toTPs(m.owned) {
			if prev, ok := seen[x]; ok {
				t.Fatalf("%v owned by %s and %s at once", x, prev, m.id)
			}
			seen[x] = m.id
		}
	}
}

func complete(members []*member, topic string, n int32) bool {
	count := 0
	for _, m := range members {
		for _, x := range toTPs(m.owned) {
			if x.topic == topic {
				count++
			}
		}
	}
	return count == int(n)
}

// converge runs heartbeat rounds (checking disjointness after every
// response) until the group is stable and complete.
func (g *groupEnv) converge(t *testing.T, members []*member, parts int32) {
	t.Helper()
	for round := 0; round < 20; round++ {
		for _, m := range members {
			g.beat(t, m)
			checkDisjoint(t, members)
		}
		g.clock.advance(100 * time.Millisecond)
		info, err := g.b.DescribeGroup(g.ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		if info.State == GroupStable && complete(members, "t", parts) {
			return
		}
	}
	info, _ := g.b.DescribeGroup(g.ctx, "g")
	t.Fatalf("group did not converge: %+v", info)
}

func testJoinRebalance(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 12, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var members []*member
	for i := range 3 {
		members = append(members, &member{id: fmt.Sprintf("m%d", i), topics: []string{"t"}})
	}
	g.converge(t, members, 12)
	for _, m := range members {
		if n := len(toTPs(m.owned)); n != 4 {
			t.Fatalf("%s owns %d of 12", m.id, n)
		}
	}
	members = append(members, &member{id: "m3", topics: []string{"t"}})
	g.converge(t, members, 12)
	for _, m := range members {
		if n := len(toTPs(m.owned)); n != 3 {
			t.Fatalf("after the 4th joined, %s owns %d of 12", m.id, n)
		}
	}
}

func testExpiry(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 4, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	a, b := &member{id: "a", topics: []string{"t"}}, &member{id: "b", topics: []string{"t"}}
	g.converge(t, []*member{a, b}, 4)
	bOwned := slices.Clone(b.owned)
	zombieEpoch := b.epoch
	commit := []offsets.CommittedOffset{{Topic: "t", Partition: bOwned[0].Partitions[0], Offset: 1}}
	if err := g.b.CommitOffsets(g.ctx, "g", "b", zombieEpoch, slices.Clone(commit)); err != nil {
		t.Fatalf("b's commit while alive: %v", err)
	}
	// b stops heartbeating; a keeps going. After the session timeout b's
	// partitions move to a.
	for range 8 {
		g.clock.advance(time.Second)
		g.beat(t, a)
	}
	if len(toTPs(a.owned)) != 4 {
		t.Fatalf("a owns %v after b expired", a.owned)
	}
	// b's late commit is rejected: it is no longer a member.
	commit[0].Offset = 99
	if err := g.b.CommitOffsets(g.ctx, "g", "b", zombieEpoch, commit); !errors.Is(err, offsets.ErrUnknownMember) {
		t.Fatalf("zombie commit: %v", err)
	}
	// Its heartbeat tells it to rejoin.
	if _, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "b", MemberEpoch: zombieEpoch}); !errors.Is(err, offsets.ErrUnknownMember) {
		t.Fatalf("zombie heartbeat: %v", err)
	}
	offs, _ := g.b.CommittedOffsets(g.ctx, "g", "t")
	for _, o := range offs {
		if o.Offset == 99 {
			t.Fatal("the zombie's commit landed")
		}
	}
	// A member with a stale epoch (bumped by a rebalance it missed) is fenced.
	c := &member{id: "c", topics: []string{"t"}}
	g.beat(t, c)
	if _, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "a", MemberEpoch: a.epoch + 100}); !errors.Is(err, offsets.ErrStaleMemberEpoch) {
		t.Fatalf("stale epoch heartbeat: %v", err)
	}
}

func testDelivery(t *testing.T, g *groupEnv) {
	const n = 600
	if _, err := g.b.CreateTopic(g.ctx, "t", 6, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var recs []ProduceRecord
	for i := range n {
		recs = append(recs, ProduceRecord{Record: segments.Record{Timestamp: NoTimestamp, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)}, Partition: NoPartition})
	}
	for i := 0; i < n; i += 100 {
		if _, err := g.b.Produce(g.ctx, "t", recs[i:i+100], ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	type consumer struct {
		member
		positions []offsets.CommittedOffset
		dead      bool
		window    map[string]bool // delivered in the last poll, not yet committed
	}
	cs := []*consumer{{member: member{id: "c0", topics: []string{"t"}}}, {member: member{id: "c1", topics: []string{"t"}}}, {member: member{id: "c2", topics: []string{"t"}}}}
	processed := map[string]int{}
	killedWindow := map[string]bool{}
	for round := 0; round < 200 && len(processed) < n; round++ {
		for i, c := range cs {
			if c.dead {
				continue
			}
			h := Heartbeat{Group: "g", MemberID: c.id, MemberEpoch: c.epoch, Topics: c.topics, SessionTimeout: 5 * time.Second, Owned: c.owned}
			if c.epoch == 0 {
				h.Owned = nil
			}
			res, err := g.b.Poll(g.ctx, Poll{Heartbeat: h, Positions: c.positions, AutoOffsetReset: "earliest", MaxRecords: 25})
			if err != nil {
				t.Fatalf("poll %s: %v", c.id, err)
			}
			c.epoch, c.owned, c.positions = res.MemberEpoch, res.Assignment, res.Positions
			c.window = map[string]bool{}
			for _, r := range res.Records {
				processed[string(r.Value)]++
				c.window[string(r.Value)] = true
			}
			// Kill c1 half way: it processed its last poll's records but
			// never polls again, so they are never committed.
			if i == 1 && len(processed) > n/2 && !c.dead {
				c.dead = true
				killedWindow = c.window
			}
		}
		g.clock.advance(time.Second)
	}
	if len(processed) != n {
		t.Fatalf("%d of %d records processed", len(processed), n)
	}
	dups := 0
	for v, k := range processed {
		if k > 1 {
			dups++
			if !killedWindow[v] {
				t.Fatalf("record %s processed %d times but was not in the killed member's uncommitted window", v, k)
			}
		}
	}
	if len(killedWindow) == 0 {
		t.Fatal("the killed member had no uncommitted window; the test proves nothing")
	}
	t.Logf("%d records, %d redelivered (all from the killed member's window of %d)", n, dups, len(killedWindow))
}

func testPartitionIncrease(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 2, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	a, b := &member{id: "a", topics: []string{"t"}}, &member{id: "b", topics: []string{"t"}}
	g.converge(t, []*member{a, b}, 2)
	p := int32(6)
	if _, err := g.b.UpdateTopic(g.ctx, "t", &p, nil); err != nil {
		t.Fatal(err)
	}
	g.converge(t, []*member{a, b}, 6)
	if len(toTPs(a.owned)) != 3 || len(toTPs(b.owned)) != 3 {
		t.Fatalf("after growing to 6: a %v b %v", a.owned, b.owned)
	}
}

func testLeaveRejoin(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 4, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	a, b := &member{id: "a", topics: []string{"t"}}, &member{id: "b", topics: []string{"t"}}
	g.converge(t, []*member{a, b}, 4)
	res, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "b", MemberEpoch: -1})
	if err != nil || res.MemberEpoch != -1 {
		t.Fatalf("leave: %+v %v", res, err)
	}
	b.owned = nil
	g.converge(t, []*member{a}, 4)
	info, _ := g.b.DescribeGroup(g.ctx, "g")
	if len(info.Members) != 1 || info.Assignor != AssignorUniform {
		t.Fatalf("%+v", info)
	}
	// Leaving twice is fine; a standalone commit is refused while a is alive.
	if _, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "b", MemberEpoch: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.b.ResetOffsets(g.ctx, "g", "t", nil, "earliest", 0); !errors.Is(err, offsets.ErrGroupNotEmpty) {
		t.Fatalf("reset on a live group: %v", err)
	}
	if err := g.b.DeleteGroup(g.ctx, "g"); !errors.Is(err, offsets.ErrGroupNotEmpty) {
		t.Fatalf("delete a live group: %v", err)
	}
	if _, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "a", MemberEpoch: -1}); err != nil {
		t.Fatal(err)
	}
	if info, _ := g.b.DescribeGroup(g.ctx, "g"); info.State != GroupEmpty {
		t.Fatalf("state after everyone left: %s", info.State)
	}
	got, err := g.b.ResetOffsets(g.ctx, "g", "t", []int32{1}, "offset", 99)
	if err != nil || got[0].Offset != 0 {
		t.Fatalf("reset clamps to the log: %+v %v", got, err)
	}
	lag, err := g.b.GroupLag(g.ctx, "g")
	if err != nil || len(lag) != 4 {
		t.Fatalf("lag %+v %v", lag, err)
	}
	if err := g.b.DeleteGroup(g.ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.b.DescribeGroup(g.ctx, "g"); !errors.Is(err, offsets.ErrUnknownGroup) {
		t.Fatalf("describe deleted group: %v", err)
	}
}

// testConcurrent races members' heartbeats against each other (joins,
// leaves and revocations interleaving) and checks every response against
// what the other members hold at that moment: a member stops holding a
// partition when it sends a heartbeat without it, and starts when a
// response gives it.
func testConcurrent(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 10, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held := map[string][]tp{}
	violations := 0
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &member{id: fmt.Sprintf("c%d", i), topics: []string{"t"}}
			time.Sleep(time.Duration(i) * 3 * time.Millisecond)
			for round := range 30 {
				h := Heartbeat{Group: "g", MemberID: m.id, MemberEpoch: m.epoch, Topics: m.topics, SessionTimeout: time.Minute, Owned: m.owned}
				if m.epoch == 0 {
					h.Owned = nil
				}
				if i == 4 && round == 15 {
					h = Heartbeat{Group: "g", MemberID: m.id, MemberEpoch: -1}
				}
				mu.Lock()
				held[m.id] = toTPs(h.Owned)
				mu.Unlock()
				a, err := g.b.Heartbeat(g.ctx, h)
				if err != nil {
					t.Errorf("%s: %v", m.id, err)
					return
				}
				mu.Lock()
				for _, x := range toTPs(a.Assignment) {
					for other, hs := range held {
						if other != m.id && slices.Contains(hs, x) {
							violations++
							t.Errorf("%v given to %s while %s holds it", x, m.id, other)
						}
					}
				}
				held[m.id] = toTPs(a.Assignment)
				mu.Unlock()
				if h.MemberEpoch == -1 {
					mu.Lock()
					held[m.id] = nil
					mu.Unlock()
					return
				}
				m.epoch, m.owned = a.MemberEpoch, a.Assignment
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if violations > 0 {
		t.Fatalf("%d overlapping assignments", violations)
	}
}

// testRejoinAfterExpiry: a lone member paused past its session (nobody
// else expired it) is told to rejoin, and can, with the same id; and a
// member whose session ended can still leave.
func testRejoinAfterExpiry(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 2, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	x := &member{id: "x", topics: []string{"t"}}
	g.converge(t, []*member{x}, 2)
	g.clock.advance(time.Minute)
	if _, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "x", MemberEpoch: x.epoch, Owned: x.owned}); !errors.Is(err, offsets.ErrUnknownMember) {
		t.Fatalf("heartbeat after the session ended: %v", err)
	}
	x.epoch, x.owned = 0, nil
	g.converge(t, []*member{x}, 2)
	// Expired again, then leaving: no error, and the group is empty.
	g.clock.advance(time.Minute)
	if _, err := g.b.Heartbeat(g.ctx, Heartbeat{Group: "g", MemberID: "x", MemberEpoch: -1}); err != nil {
		t.Fatalf("leave after the session ended: %v", err)
	}
	info, err := g.b.DescribeGroup(g.ctx, "g")
	if err != nil || len(info.Members) != 0 {
		t.Fatalf("after leaving: %+v %v", info, err)
	}
}

// testNewPartitionsEarliest: a member polling with auto_offset_reset
// "latest" still reads records written to partitions added after the group
// subscribed, before the member took them.
func testNewPartitionsEarliest(t *testing.T, g *groupEnv) {
	if _, err := g.b.CreateTopic(g.ctx, "t", 2, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	poll := func(p *Poll) PollResult {
		t.Helper()
		res, err := g.b.Poll(g.ctx, *p)
		if err != nil {
			t.Fatal(err)
		}
		p.MemberEpoch, p.Owned, p.Positions = res.MemberEpoch, res.Assignment, res.Positions
		p.Topics = nil
		return res
	}
	p := &Poll{Heartbeat: Heartbeat{Group: "g", MemberID: "m", Topics: []string{"t"}, SessionTimeout: 10 * time.Second}, AutoOffsetReset: "latest"}
	for range 3 {
		poll(p)
	}
	n := int32(4)
	if _, err := g.b.UpdateTopic(g.ctx, "t", &n, nil); err != nil {
		t.Fatal(err)
	}
	for part := int32(2); part < 4; part++ {
		r := rec("", fmt.Sprintf("early-%d", part))
		r.Partition = part
		if _, err := g.b.Produce(g.ctx, "t", []ProduceRecord{r}, ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range 10 {
		for _, r := range poll(p).Records {
			seen[string(r.Value)] = true
		}
		g.clock.advance(100 * time.Millisecond)
	}
	if !seen["early-2"] || !seen["early-3"] {
		t.Fatalf("records of the new partitions were skipped: saw %v", seen)
	}
}
