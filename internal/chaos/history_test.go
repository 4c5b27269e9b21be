package chaos

import (
	"context"
	"fmt"
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
	acked    map[string]ack
	maybe    map[string]bool // timed out or failed: may or may not be stored
	observed map[ack]string  // what consumers read where
	commits  map[string]int64
	// backwards collects committed offsets seen moving back.
	backwards []string
}

func newHistory() *history {
	return &history{acked: map[string]ack{}, maybe: map[string]bool{}, observed: map[ack]string{}, commits: map[string]int64{}}
}

func (h *history) op() {
	h.mu.Lock()
	h.ops++
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
	fsck                                                              string
	problems                                                          []string
}

func (v verdict) String() string {
	return fmt.Sprintf("ops=%d acked=%d lost=%d duplicated=%d reordered=%d gaps=%d vanished=%d commits_backwards=%d fsck=%s",
		v.ops, v.acked, v.lost, v.duplicated, v.reordered, v.gaps, v.phantom, v.backwards, v.fsck)
}

func (v verdict) ok() bool {
	return v.lost+v.duplicated+v.reordered+v.gaps+v.phantom+v.backwards == 0 && v.fsck == "clean"
}

// finalLog is every partition read from offset 0 after the run.
type finalLog struct {
	where  map[string][]ack // value -> where stored
	stored map[ack]string
	v      verdict // gaps and reordering found while reading
}

// check reads every partition of topic from the log start (without faults,
// through a fresh process) and compares it with the history.
func (h *history) check(ctx context.Context, t *testing.T, c *client.Client, be backend, topic string, partitions int32) verdict {
	return h.verdict(ctx, h.readAll(ctx, t, c, topic, partitions), be)
}

func (h *history) readAll(ctx context.Context, t *testing.T, c *client.Client, topic string, partitions int32) *finalLog {
	f := &finalLog{where: map[string][]ack{}, stored: map[ack]string{}}
	for p := range partitions {
		last := map[string]int{} // producer -> last sequence in this partition
		next := int64(-1)
		for off := int64(0); ; {
			res, err := c.Read(ctx, topic, p, client.ReadOptions{Offset: &off, MaxRecords: 5000})
			if err != nil {
				t.Fatalf("final read of partition %d at %d: %v", p, off, err)
			}
			for _, r := range res.Records {
				if next >= 0 && r.Offset != next {
					f.v.gaps++
					f.v.problems = append(f.v.problems, fmt.Sprintf("partition %d: offset %d follows %d", p, r.Offset, next-1))
				}
				next = r.Offset + 1
				val := string(r.Value)
				f.where[val] = append(f.where[val], ack{p, r.Offset})
				f.stored[ack{p, r.Offset}] = val
				if prod, seq, ok := parseValue(val); ok {
					if prev, seen := last[prod]; seen && seq < prev {
						f.v.reordered++
						f.v.problems = append(f.v.problems, fmt.Sprintf("partition %d: %s stored after %s-%06d", p, val, prod, prev))
					}
					last[prod] = seq
				}
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
	return f
}

// verdict compares the final log with the history and runs fsck on the
// storage directly.
func (h *history) verdict(ctx context.Context, f *finalLog, be backend) verdict {
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
	rep, err := compactor.Fsck(ctx, offsets.New(be.table), be.bucket, compactor.FsckOptions{})
	switch {
	case err != nil:
		v.fsck = "error: " + err.Error()
	case rep.Clean():
		v.fsck = "clean"
	default:
		v.fsck = fmt.Sprintf("%d violations", len(rep.Violations))
		for _, x := range rep.Violations {
			v.problems = append(v.problems, fmt.Sprintf("fsck: invariant %d: %s/%v %s: %s", x.Invariant, x.Topic, x.Partition, x.Object, x.Detail))
		}
	}
	return v
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
