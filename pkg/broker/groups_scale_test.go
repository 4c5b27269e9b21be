package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// TestGroupOfFiveThousandMembers: 5,000 members share a topic of 10,000
// partitions on the embedded store, which enforces DynamoDB's limits (400
// KB items, 100 items per transaction): the group converges to two
// partitions per member, owned by exactly one member each, and a steady
// member's heartbeat costs a constant number of metadata calls.
func TestGroupOfFiveThousandMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 members")
	}
	bt, err := bolttable.Open(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bt.Close() })
	groupAtScale(t, bt, 5000, 10000)
}

// TestGroupAtScaleMoto: the same on DynamoDB (moto, serialized, so
// smaller: 200 members over 400 partitions).
func TestGroupAtScaleMoto(t *testing.T) {
	endpoint := testenv.Moto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := dynamotable.NewClient(context.Background(), awsconf.Config{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.Name("groupscale")
	if err := dynamotable.EnsureTable(context.Background(), c, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
	groupAtScale(t, dynamotable.New(c, name), 200, 400)
}

func groupAtScale(t *testing.T, inner offsets.Table, members int, partitions int32) {
	table := faults.WrapTable(inner, nil)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	b := New(offsets.New(table, offsets.WithClock(clock.now)), membucket.New(), Config{Now: clock.now})
	g := &groupEnv{b: b, clock: clock, ctx: context.Background()}
	if _, err := b.CreateTopic(g.ctx, "wide", partitions, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	ms := make([]*member, members)
	for i := range ms {
		ms[i] = &member{id: fmt.Sprintf("member-%05d", i), topics: []string{"wide"}}
	}
	// Every member heartbeats, 64 at a time, round after round.
	round := func() {
		var wg sync.WaitGroup
		work := make(chan *member)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range work {
					h := Heartbeat{Group: "g", MemberID: m.id, MemberEpoch: m.epoch, Topics: m.topics, SessionTimeout: 10 * time.Minute, Owned: m.owned}
					if m.epoch == 0 {
						h.Owned = nil
					}
					a, err := b.Heartbeat(g.ctx, h)
					if err != nil {
						t.Errorf("heartbeat of %s: %v", m.id, err)
						continue
					}
					m.epoch, m.owned = a.MemberEpoch, a.Assignment
				}
			}()
		}
		for _, m := range ms {
			work <- m
		}
		close(work)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		checkDisjoint(t, ms)
	}
	// Converged: every partition owned, and spread evenly. (Every partition
	// can be owned while the first members still hold more than their
	// share, when a slow store lets a round end before the assignment
	// counted every member.)
	even := func() bool {
		for _, m := range ms {
			if len(toTPs(m.owned)) != int(partitions)/members {
				return false
			}
		}
		return true
	}
	converged := false
	for r := 0; r < 8 && !converged; r++ {
		round()
		clock.advance(time.Second)
		converged = complete(ms, "wide", partitions) && even()
	}
	if !converged {
		info, _ := b.DescribeGroup(g.ctx, "g")
		t.Fatalf("not converged after 8 rounds: %d members, state %s", len(info.Members), info.State)
	}
	for _, m := range ms {
		if n := len(toTPs(m.owned)); n != int(partitions)/members {
			t.Fatalf("%s owns %d partitions, want %d (uniform)", m.id, n, int(partitions)/members)
		}
	}
	// A steady heartbeat: what it costs.
	before := table.Counts()
	round()
	after := table.Counts()
	calls := float64((after.Get+after.Query+after.Write)-(before.Get+before.Query+before.Write)) / float64(members)
	t.Logf("steady heartbeat: %.2f metadata calls, %.2f items read, %.2f written", calls,
		float64(after.ItemsRead-before.ItemsRead)/float64(members), float64(after.WriteOps-before.WriteOps)/float64(members))
	// One per heartbeat (its read of the meta and its member item; the
	// renewal write comes once a quarter of the session has passed), plus,
	// amortized over the group, a scan for expired members at most every
	// 30 s.
	if calls > 1.5 {
		t.Fatalf("a steady heartbeat makes %.2f metadata calls, want 1 and upkeep", calls)
	}
}

// TestPollOverAThousandPartitions: a member that owns 1,000 partitions
// polls with the positions of its previous poll, as the SDK does. An idle
// poll reads the group (one call) and the partitions' heads (ten calls of
// 100), and writes nothing; a poll after appends to a few partitions
// reads their new records through the heads' tail entries, and commits
// the positions that moved.
func TestPollOverAThousandPartitions(t *testing.T) {
	table := faults.WrapTable(memtable.New(), nil)
	store := offsets.New(table)
	bucket := membucket.New()
	b := New(store, bucket, Config{})
	producer := New(store, bucket, Config{}) // another process: nothing reaches b's caches
	ctx := context.Background()
	if _, err := b.CreateTopic(ctx, "wide", 1000, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	p := Poll{Heartbeat: Heartbeat{Group: "g", MemberID: "m-1", Topics: []string{"wide"}}, AutoOffsetReset: "earliest"}
	committed := map[tp]int64{}
	poll := func() PollResult {
		t.Helper()
		p.NoCommit = true
		for _, o := range p.Positions {
			if c, ok := committed[tp{o.Topic, o.Partition}]; !ok || c != o.Offset {
				p.NoCommit = false // as the SDK: commit only when a position moved
			}
		}
		res, err := b.Poll(ctx, p)
		if err != nil || res.CommitErr != nil {
			t.Fatalf("poll: %v %v", err, res.CommitErr)
		}
		if !p.NoCommit {
			for _, o := range p.Positions {
				committed[tp{o.Topic, o.Partition}] = o.Offset
			}
		}
		p.MemberEpoch, p.Owned, p.Positions = res.MemberEpoch, res.Assignment, res.Positions
		return res
	}
	for range 20 {
		if res := poll(); len(toTPs(res.Assignment)) == 1000 && len(res.Positions) == 1000 {
			break
		}
	}
	if n := len(toTPs(p.Owned)); n != 1000 {
		t.Fatalf("the member owns %d partitions", n)
	}
	poll() // commits the first positions
	calls := func() int64 { c := table.Counts(); return c.Get + c.Query + c.Write }

	const polls = 20
	before := calls()
	for range polls {
		if res := poll(); len(res.Records) != 0 {
			t.Fatal("records from an idle topic")
		}
	}
	idle := float64(calls()-before) / polls
	t.Logf("idle poll over 1,000 partitions: %.1f metadata calls", idle)
	if idle > 11 {
		t.Fatalf("an idle poll makes %.1f metadata calls, want at most 11", idle)
	}

	var busy []float64
	for _, k := range []int{1, 10} {
		var total int64
		for round := range polls {
			for j := range k {
				part := int32((round*k + j) * 37 % 1000)
				if _, err := producer.ProducePartition(ctx, "wide", part, PartitionProduce{Records: []segments.Record{{Timestamp: NoTimestamp, Value: []byte("x")}}, ExpectedOffset: -1}); err != nil {
					t.Fatal(err)
				}
			}
			before := calls()
			if res := poll(); len(res.Records) != k {
				t.Fatalf("poll after %d appends: %d records", k, len(res.Records))
			}
			total += calls() - before
		}
		busy = append(busy, float64(total)/polls)
		t.Logf("poll returning records of %d partitions (committing the previous): %.1f metadata calls", k, busy[len(busy)-1])
	}
	// The poll after records arrived also commits the positions that moved
	// (a read of the committed offsets, the member and a write): about 14.
	// A slow run (-race, a loaded CI machine) may see the member's session
	// renewal fall due within the measured polls: one write more, spread
	// over them. Before polls read heads only, an idle poll took 24.
	if busy[0] > 15 || busy[1] > 15 {
		t.Fatalf("busy polls make %.1f and %.1f metadata calls, want at most 15", busy[0], busy[1])
	}
}
