package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/offsets"
)

// ack is where the server said a record was stored.
type ack struct {
	partition int32
	offset    int64
}

// history is what clients saw. A record's value names its producer and
// its sequence number in that producer ("p3-000042"), so the checker can
// tell records apart and check each producer's order.
type history struct {
	mu       sync.Mutex
	ops      int64
	sent     map[string]bool // every value a producer tried to send
	acked    map[string]ack
	maybe    map[string]bool // timed out or failed: may or may not be stored
	none     map[string]bool // failed with side_effect none: must not be stored
	observed map[ack]string  // what consumers read where
	commits  map[string]int64
	// backwards collects committed offsets seen moving back.
	backwards []string
}

func newHistory() *history {
	return &history{sent: map[string]bool{}, acked: map[string]ack{}, maybe: map[string]bool{}, none: map[string]bool{},
		observed: map[ack]string{}, commits: map[string]int64{}}
}

func (h *history) op() {
	h.mu.Lock()
	h.ops++
	h.mu.Unlock()
}

// send records that a producer is about to send value.
func (h *history) send(value string) {
	h.mu.Lock()
	h.sent[value] = true
	h.mu.Unlock()
}

func (h *history) ack(value string, a ack) {
	h.mu.Lock()
	h.acked[value] = a
	h.mu.Unlock()
}

func (h *history) fail(value string) {
	h.mu.Lock()
	h.maybe[value] = true
	h.mu.Unlock()
}

// failNone records a failure the server said changed nothing.
func (h *history) failNone(value string) {
	h.mu.Lock()
	h.none[value] = true
	h.mu.Unlock()
}

func (h *history) observe(r client.Record) {
	h.mu.Lock()
	h.observed[ack{r.Partition, r.Offset}] = string(r.Value)
	h.mu.Unlock()
}

// commit records a committed offset seen by a reader of the group's
// offsets; they must never move back.
func (h *history) commit(topic string, partition int32, offset int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := fmt.Sprintf("%s/%d", topic, partition)
	if prev, ok := h.commits[k]; ok && offset < prev {
		h.backwards = append(h.backwards, fmt.Sprintf("%s: %d after %d", k, offset, prev))
	}
	h.commits[k] = max(h.commits[k], offset)
}

// verdict is the checker's summary.
type verdict struct {
	ops, acked, lost, duplicated, reordered, gaps, phantom, backwards int
	unsent, noneStored, skipped                                       int
	fsck                                                              string
	// floors lists what the run did too little of to prove anything.
	floors   []string
	problems []string
}

func (v verdict) String() string {
	return fmt.Sprintf("ops=%d acked=%d lost=%d duplicated=%d reordered=%d gaps=%d vanished=%d commits_backwards=%d unsent=%d stored_after_none=%d skipped_by_group=%d fsck=%s floors_missed=%d",
		v.ops, v.acked, v.lost, v.duplicated, v.reordered, v.gaps, v.phantom, v.backwards, v.unsent, v.noneStored, v.skipped, v.fsck, len(v.floors))
}

func (v verdict) ok() bool {
	return v.lost+v.duplicated+v.reordered+v.gaps+v.phantom+v.backwards+v.unsent+v.noneStored+v.skipped == 0 &&
		v.fsck == "clean" && len(v.floors) == 0
}

// floors is the least a run must have done for its verdict to mean
// something: a broker that refuses every write, or a schedule whose faults
// never fired, would otherwise pass.
type floors struct {
	acked   int
	crashes int64
	// faults: every phase named here must have fired at least one fault.
	faults map[string]int64
}

// finalLog is every partition read from offset 0 after the run.
type finalLog struct {
	where  map[string][]ack // value -> where stored
	stored map[ack]string
	// committed is the group's committed offset per partition at the end.
	committed map[int32]int64
	v         verdict // gaps and reordering found while reading
}

// check reads every partition of topic from the log start (without faults,
// through a fresh process) and compares it with the history.
func (h *history) check(ctx context.Context, t *testing.T, c *client.Client, be backend, topic string, partitions int32, fl floors, fired map[string]int64, crashes int64) verdict {
	v := h.judge(h.readAll(ctx, t, c, topic, partitions), fl, fired, crashes)
	v.fsck = fsckVerdict(ctx, be, &v)
	return v
}

func (h *history) readAll(ctx context.Context, t *testing.T, c *client.Client, topic string, partitions int32) *finalLog {
	f := &finalLog{where: map[string][]ack{}, stored: map[ack]string{}, committed: map[int32]int64{}}
	for p := range partitions {
		last := map[string]int{} // producer -> last sequence in this partition
		next := int64(-1)
		for off := int64(0); ; {
			res, err := c.Read(ctx, topic, p, client.ReadOptions{Offset: &off, MaxRecords: 5000})
			if err != nil {
				t.Fatalf("final read of partition %d at %d: %v", p, off, err)
			}
			if next < 0 {
				next = res.LogStartOffset // the first record must be at the log start
			}
			for _, r := range res.Records {
				f.record(p, r.Offset, string(r.Value), &next, last)
			}
			if res.NextOffset >= res.LogEndOffset || len(res.Records) == 0 {
				if res.NextOffset < res.LogEndOffset {
					t.Fatalf("partition %d: read stalled at %d below log end %d", p, res.NextOffset, res.LogEndOffset)
				}
				break
			}
			off = res.NextOffset
		}
	}
	offs, err := c.GroupOffsets(ctx, groupName)
	if err != nil && client.Code(err) != "unknown_group" {
		t.Fatalf("final read of the group's offsets: %v", err)
	}
	for _, o := range offs {
		if o.Topic == topic {
			f.committed[o.Partition] = o.Offset
		}
	}
	return f
}

// record adds one stored record to the final log, checking density and
// each producer's order.
func (f *finalLog) record(p int32, off int64, val string, next *int64, last map[string]int) {
	if off != *next {
		f.v.gaps++
		f.v.problems = append(f.v.problems, fmt.Sprintf("partition %d: offset %d where %d was next", p, off, *next))
	}
	*next = off + 1
	f.where[val] = append(f.where[val], ack{p, off})
	f.stored[ack{p, off}] = val
	if prod, seq, ok := parseValue(val); ok {
		if prev, seen := last[prod]; seen && seq < prev {
			f.v.reordered++
			f.v.problems = append(f.v.problems, fmt.Sprintf("partition %d: %s stored after %s-%06d", p, val, prod, prev))
		}
		last[prod] = seq
	}
}

// judge compares the final log with the history (a pure function, so the
// mutation test can feed it broken histories).
func (h *history) judge(f *finalLog, fl floors, fired map[string]int64, crashes int64) verdict {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := f.v
	v.ops, v.acked, v.backwards = int(h.ops), len(h.acked), len(h.backwards)
	for _, b := range h.backwards {
		v.problems = append(v.problems, "committed offset moved back: "+b)
	}
	for val, locs := range f.where {
		if len(locs) > 1 {
			v.duplicated++
			v.problems = append(v.problems, fmt.Sprintf("%s stored %d times: %v", val, len(locs), locs))
		}
		if !h.sent[val] {
			v.unsent++
			v.problems = append(v.problems, fmt.Sprintf("%s is stored at %v but no producer sent it", val, locs))
		}
		if h.none[val] {
			v.noneStored++
			v.problems = append(v.problems, fmt.Sprintf("%s is stored at %v, but its request failed with side_effect none", val, locs))
		}
	}
	for val, a := range h.acked {
		locs := f.where[val]
		if len(locs) == 0 {
			v.lost++
			v.problems = append(v.problems, fmt.Sprintf("acknowledged %s (partition %d offset %d) is missing", val, a.partition, a.offset))
		} else if !slices.Contains(locs, a) {
			v.lost++
			v.problems = append(v.problems, fmt.Sprintf("acknowledged %s at %v is stored at %v", val, a, locs))
		}
	}
	for a, val := range h.observed {
		if f.stored[a] != val {
			v.phantom++
			v.problems = append(v.problems, fmt.Sprintf("consumer read %s at %v; now there is %q", val, a, f.stored[a]))
		}
	}
	// The group consumes from the earliest offset: everything below its
	// committed offset must have been read by some member.
	for p, c := range f.committed {
		for off := int64(0); off < c; off++ {
			if _, ok := h.observed[ack{p, off}]; !ok && f.stored[ack{p, off}] != "" {
				v.skipped++
				v.problems = append(v.problems, fmt.Sprintf("the group committed %d on partition %d but no member read offset %d", c, p, off))
				break
			}
		}
	}
	if v.acked < fl.acked {
		v.floors = append(v.floors, fmt.Sprintf("only %d records acknowledged (floor %d)", v.acked, fl.acked))
	}
	if crashes < fl.crashes {
		v.floors = append(v.floors, fmt.Sprintf("only %d process crashes (floor %d)", crashes, fl.crashes))
	}
	for _, name := range slices.Sorted(maps.Keys(fl.faults)) {
		if fired[name] < fl.faults[name] {
			v.floors = append(v.floors, fmt.Sprintf("phase %q fired %d faults (floor %d)", name, fired[name], fl.faults[name]))
		}
	}
	v.problems = append(v.problems, v.floors...)
	return v
}

// fsckVerdict runs fsck on the storage directly.
func fsckVerdict(ctx context.Context, be backend, v *verdict) string {
	rep, err := compactor.Fsck(ctx, offsets.New(be.table), be.bucket, compactor.FsckOptions{Footers: true})
	switch {
	case err != nil:
		return "error: " + err.Error()
	case rep.Clean():
		return "clean"
	}
	for _, x := range rep.Violations {
		v.problems = append(v.problems, fmt.Sprintf("fsck: invariant %d: %s/%v %s: %s", x.Invariant, x.Topic, x.Partition, x.Object, x.Detail))
	}
	return fmt.Sprintf("%d violations", len(rep.Violations))
}

func parseValue(v string) (producer string, seq int, ok bool) {
	prod, rest, found := strings.Cut(v, "-")
	if !found {
		return "", 0, false
	}
	_, err := fmt.Sscanf(rest, "%d", &seq)
	return prod, seq, err == nil
}

// phase is a stretch of the run with one set of faults.
type phase struct {
	name          string
	objects, meta faults.Plan
	crashSteps    int // >0: kill the process after each of 0..crashSteps-1 storage calls
}
