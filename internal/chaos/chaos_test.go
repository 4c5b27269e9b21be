package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/client"
)

// profile sizes a run.
type profile struct {
	name                 string
	producers, consumers int
	partitions           int32
	phaseLen             time.Duration
	duration             time.Duration // phases repeat until this has passed
	minAcked             int           // floor: fewer acknowledged records prove nothing
}

func currentProfile() profile {
	if os.Getenv("STREAMBED_CHAOS") == "long" {
		return profile{"long", 32, 16, 16, 20 * time.Second, 10 * time.Minute, 100_000}
	}
	return profile{"ci", 8, 4, 4, 1500 * time.Millisecond, 0, 2_000}
}

// faultFloor is how many faults each faulty phase must fire (per round) for
// the run to count.
const faultFloor = 3

// groupName is the consumers' group.
const groupName = "chaos-group"

var phases = []phase{
	{name: "none"},
	{name: "object store down", objects: faults.Plan{Down: true}},
	{name: "object store slow and failing", objects: faults.Plan{Latency: 15 * time.Millisecond, Jitter: 30 * time.Millisecond, ErrRate: 0.1}},
	{name: "metadata down", meta: faults.Plan{Down: true}},
	{name: "metadata slow and failing", meta: faults.Plan{Latency: 5 * time.Millisecond, Jitter: 20 * time.Millisecond, ErrRate: 0.1}},
	{name: "metadata throttled", meta: faults.Plan{ErrRate: 0.3, Throttle: true}},
	{name: "metadata write conflicts", meta: faults.Plan{ConflictRate: 0.3}},
	{name: "responses lost after commit", objects: faults.Plan{LostRate: 0.2}, meta: faults.Plan{LostRate: 0.2}},
	{name: "process killed at each step of the commit path", crashSteps: 6},
	{name: "none"},
}

// TestConsistencyUnderFaults is the harness's main run (see the package
// doc), on the embedded default and on MinIO + moto.
func TestConsistencyUnderFaults(t *testing.T) {
	prof := currentProfile()
	for _, mk := range backends(t) {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			s := seed(t)
			t.Logf("profile %s, seed %d (replay with STREAMBED_CHAOS_SEED=%d)", prof.name, s, s)
			v := run(t, be, prof, s)
			t.Log(v.String())
			if !v.ok() {
				for i, p := range v.problems {
					if i == 30 {
						t.Logf("... %d more", len(v.problems)-30)
						break
					}
					t.Log(p)
				}
				t.Fatalf("consistency violated: %s", v)
			}
		})
	}
}

func run(t *testing.T, be backend, prof profile, s uint64) verdict {
	c := newCluster(t, be, s, os.Getenv("STREAMBED_CHAOS_NOCOMPACT") == "")
	const topic = "chaos"
	cl, err := client.New(c.url, client.WithRetry(10, 20*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.CreateTopic(ctx, topic, prof.partitions, nil); err != nil {
		t.Fatal(err)
	}
	h := newHistory()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range prof.producers {
		wg.Add(1)
		if i%2 == 0 {
			go func() { defer wg.Done(); idempotentProducer(runCtx, t, cl, topic, i, h) }()
		} else {
			go func() { defer wg.Done(); plainProducer(runCtx, cl, topic, i, h) }()
		}
	}
	var cwg sync.WaitGroup
	for i := range prof.consumers {
		cwg.Add(1)
		go func() { defer cwg.Done(); consumer(runCtx, cl, topic, i, h) }()
	}
	cwg.Add(1)
	go func() { defer cwg.Done(); watchCommits(runCtx, cl, h) }()

	start := time.Now()
	fired := map[string]int64{}
	fl := floors{acked: prof.minAcked, faults: map[string]int64{}}
	for round := 0; round == 0 || time.Since(start) < prof.duration; round++ {
		for _, ph := range selectedPhases(t) {
			before := c.faultsFired()
			c.setPlans(ph.objects, ph.meta)
			faulty := ph.objects != (faults.Plan{}) || ph.meta != (faults.Plan{})
			if ph.crashSteps == 0 {
				time.Sleep(prof.phaseLen)
				// Rate-based faults fire per write, and group commit makes
				// writes few: on a slow backend a short phase can pass with
				// almost none. Stretch the phase (up to 5x) until the floor
				// is met, so the floor measures the harness, not luck.
				for end := time.Now().Add(4 * prof.phaseLen); faulty && c.faultsFired()-before < faultFloor && time.Now().Before(end); {
					time.Sleep(50 * time.Millisecond)
				}
			} else {
				for step := range ph.crashSteps {
					c.crashAfter(int64(step), time.Second)
					time.Sleep(prof.phaseLen / time.Duration(ph.crashSteps))
				}
				fl.crashes += int64(ph.crashSteps)
			}
			fired[ph.name] += c.faultsFired() - before
			if faulty {
				fl.faults[ph.name] = faultFloor
			}
		}
	}
	c.setPlans(faults.Plan{}, faults.Plan{})
	stop()
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // consumers catch up a little
	cwg.Wait()
	t.Logf("%d process crashes; faults fired per phase: %v", c.crashes.Load(), fired)
	// Check a quiet system: fsck copes with a live compactor by re-reading,
	// but the checker's reads should see one state.
	c.cur.Load().stopCompactor()
	c.settle()
	return h.check(ctx, t, cl, be, topic, prof.partitions, fl, fired, c.crashes.Load())
}

// idempotentProducer produces "i<n>g<gen>-<seq>" records through the SDK's
// batching, idempotent producer. If the producer fails for good (as an
// idempotent producer does on a broken sequence), a new one takes over
// with a new generation, as an application would restart it.
func idempotentProducer(ctx context.Context, t *testing.T, cl *client.Client, topic string, n int, h *history) {
	for gen := 0; ctx.Err() == nil; gen++ {
		label := fmt.Sprintf("i%dg%d", n, gen)
		p, err := cl.NewProducer(context.Background(), topic, client.WithLinger(5*time.Millisecond), client.WithBatchBytes(16<<10),
			client.WithBufferBytes(256<<10), client.WithDeliveryTimeout(time.Minute),
			client.WithDeliveryCallback(func(r client.Record, d client.Delivery, err error) {
				if err != nil {
					h.fail(string(r.Value))
					return
				}
				h.ack(string(r.Value), ack{d.Partition, d.Offset})
			}))
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for seq := 0; ctx.Err() == nil; seq++ {
			h.op()
			val := fmt.Sprintf("%s-%06d", label, seq)
			h.send(val)
			f := p.Produce(ctx, client.Record{Key: fmt.Appendf(nil, "k%d", seq%64), Value: []byte(val)})
			select {
			case <-f.Done():
				if _, err := f.Wait(ctx); err != nil && ctx.Err() == nil {
					seq = -2 // broken: start a new generation
				}
			default:
			}
			if seq < 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_ = p.Close(closeCtx)
		cancel()
	}
}

// plainProducer sends small requests without idempotence: a failure
// whose outcome is unknown leaves its records "maybe stored".
func plainProducer(ctx context.Context, cl *client.Client, topic string, n int, h *history) {
	for seq := 0; ctx.Err() == nil; {
		recs := make([]client.Record, 10)
		for j := range recs {
			recs[j] = client.Record{Key: fmt.Appendf(nil, "k%d", (seq+j)%64), Value: fmt.Appendf(nil, "n%d-%06d", n, seq+j)}
			h.send(string(recs[j].Value))
		}
		seq += len(recs)
		h.op()
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := cl.Produce(rctx, topic, recs)
		cancel()
		var prob *api.Problem
		nothing := errors.As(err, &prob) && prob.SideEffect == api.SideEffectNone
		for j, r := range recs {
			switch {
			case nothing:
				h.failNone(string(r.Value))
			case err != nil || j >= len(res) || res[j].Error != nil || res[j].Offset == nil:
				h.fail(string(r.Value))
			default:
				h.ack(string(r.Value), ack{*res[j].Partition, *res[j].Offset})
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consumer reads as a group member and records what it saw where.
func consumer(ctx context.Context, cl *client.Client, topic string, n int, h *history) {
	cs, err := cl.NewConsumer(groupName, []string{topic}, client.WithPollWait(200*time.Millisecond),
		client.WithSessionTimeout(3*time.Second), client.WithMemberID(fmt.Sprintf("consumer-%d", n)),
		client.WithAutoOffsetReset("earliest"))
	if err != nil {
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = cs.Close(cctx)
		cancel()
	}()
	for ctx.Err() == nil {
		recs, err := cs.Poll(ctx)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		h.op()
		for _, r := range recs {
			h.observe(r)
		}
	}
}

// watchCommits samples the group's committed offsets.
func watchCommits(ctx context.Context, cl *client.Client, h *history) {
	for ctx.Err() == nil {
		offs, err := cl.GroupOffsets(ctx, groupName)
		if err == nil {
			for _, o := range offs {
				h.commit(o.Topic, o.Partition, o.Offset)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// selectedPhases is every phase, or those STREAMBED_CHAOS_PHASES names by
// index ("1,3"), to narrow down a failure.
func selectedPhases(t *testing.T) []phase {
	v := os.Getenv("STREAMBED_CHAOS_PHASES")
	if v == "" {
		return phases
	}
	var out []phase
	for _, f := range strings.Split(v, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 || i >= len(phases) {
			t.Fatalf("STREAMBED_CHAOS_PHASES=%q: phases are 0..%d", v, len(phases)-1)
		}
		out = append(out, phases[i])
	}
	return out
}
