package compactor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// FsckOptions tune a consistency check.
type FsckOptions struct {
	// GCGrace is how long an unreferenced object may remain (the store's GC
	// grace, 1 h by default); OrphanAge the commit deadline (1 h).
	GCGrace, OrphanAge time.Duration
	// Slack allows for one compactor run after a deadline (default 10 min).
	Slack time.Duration
	// Strict reports every object no index entry references, whatever its
	// age: for tests after GC has run.
	Strict bool
	// Footers reads the footer of every referenced object (two ranged
	// reads and a stat each) and checks each index entry against its
	// slice: range, partition, counts and points.
	Footers bool
	// Previous, if set, is an earlier report: log starts and ends must not
	// have moved back since.
	Previous *Report
	Now      func() time.Time
}

// Violation is one broken storage invariant.
type Violation struct {
	Invariant int    `json:"invariant"`
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Object    string `json:"object,omitempty"`
	Detail    string `json:"detail"`
}

// Bounds are a partition's log start and end at check time.
type Bounds struct {
	LogStart int64 `json:"log_start"`
	LogEnd   int64 `json:"log_end"`
}

// Report is what fsck found.
type Report struct {
	CheckedAt  time.Time         `json:"checked_at"`
	Topics     int               `json:"topics"`
	Partitions int               `json:"partitions"`
	Entries    int               `json:"entries"`
	Objects    int               `json:"objects"`
	Bytes      int64             `json:"bytes"`
	Bounds     map[string]Bounds `json:"bounds"` // "topicID/partition"
	Violations []Violation       `json:"violations"`
}

// Clean reports whether no invariant is broken.
func (r *Report) Clean() bool { return len(r.Violations) == 0 }

// Fsck checks the storage invariants on a live deployment without changing
// anything:
//
//  2. offsets are dense: each partition's index entries tile
//     [log start, log end) without gaps or overlaps;
//  3. no index entry points at a missing object (or past its end); every
//     object's reference count equals the entries pointing at it; no object
//     outlives its last reference by more than the GC grace period plus a
//     compactor run, and no unreferenced upload outlives the commit deadline;
//  4. the log start never passes the log end, and (given a previous report)
//     neither moved back.
//
// A live deployment keeps changing while fsck reads it: a merge or a
// commit between reading a partition's index and reading the reference
// counts looks like a miscount. So a pass that finds violations is
// repeated (up to fsckPasses times, a moment apart), and only violations
// found by every pass are reported: a real one does not go away by itself.
func Fsck(ctx context.Context, store *offsets.Store, bucket segments.Bucket, opt FsckOptions) (*Report, error) {
	rep, err := fsckOnce(ctx, store, bucket, opt)
	for pass := 1; err == nil && !rep.Clean() && pass < fsckPasses; pass++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(fsckRecheckDelay):
		}
		var next *Report
		if next, err = fsckOnce(ctx, store, bucket, opt); err != nil {
			break
		}
		seen := map[string]bool{}
		for _, v := range rep.Violations {
			seen[v.key()] = true
		}
		kept := next.Violations[:0]
		for _, v := range next.Violations {
			if seen[v.key()] {
				kept = append(kept, v)
			}
		}
		next.Violations = kept
		rep = next
	}
	return rep, err
}

const (
	fsckPasses       = 3
	fsckRecheckDelay = 200 * time.Millisecond
)

func (v Violation) key() string {
	p := int32(-1)
	if v.Partition != nil {
		p = *v.Partition
	}
	return fmt.Sprintf("%d|%s|%d|%s", v.Invariant, v.Topic, p, v.Object)
}

func fsckOnce(ctx context.Context, store *offsets.Store, bucket segments.Bucket, opt FsckOptions) (*Report, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.GCGrace == 0 {
		opt.GCGrace = time.Hour
	}
	if opt.OrphanAge == 0 {
		opt.OrphanAge = time.Hour
	}
	if opt.Slack == 0 {
		opt.Slack = 10 * time.Minute
	}
	now := opt.Now()
	rep := &Report{CheckedAt: now, Bounds: map[string]Bounds{}, Violations: []Violation{}}
	add := func(inv int, topic string, p *int32, obj, format string, args ...any) {
		rep.Violations = append(rep.Violations, Violation{Invariant: inv, Topic: topic, Partition: p, Object: obj, Detail: fmt.Sprintf(format, args...)})
	}
	type part struct {
		name, id string
		p        int32
	}
	var parts []part
	for after := ""; ; {
		topics, next, err := store.ListTopics(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, t := range topics {
			rep.Topics++
			for p := range t.Partitions {
				parts = append(parts, part{t.Name, t.ID, p})
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	// Deleted topics awaiting purge still reference objects.
	dels, err := store.DeletedTopics(ctx, 0)
	if err != nil {
		return nil, err
	}
	for _, d := range dels {
		for p := range d.Partitions {
			parts = append(parts, part{d.Name + " (deleted)", d.ID, p})
		}
	}

	refsFromIndex := map[string]int64{}
	type ref struct {
		name, id string
		p        int32
		e        offsets.IndexEntry
	}
	entriesOf := map[string][]ref{}
	for _, pt := range parts {
		items, err := store.InspectPartition(ctx, pt.id, pt.p)
		if err != nil {
			return nil, err
		}
		rep.Partitions++
		p := pt.p
		start, end := items.Ctl.LogStart, items.Head.LogEnd
		key := fmt.Sprintf("%s/%d", pt.id, pt.p)
		rep.Bounds[key] = Bounds{LogStart: start, LogEnd: end}
		if start > end {
			add(4, pt.name, &p, "", "log start %d is past the log end %d", start, end)
		}
		if prev, ok := opt.Previous.bounds(key); ok {
			if start < prev.LogStart {
				add(4, pt.name, &p, "", "log start moved back from %d to %d", prev.LogStart, start)
			}
			if end < prev.LogEnd {
				add(4, pt.name, &p, "", "log end moved back from %d to %d", prev.LogEnd, end)
			}
		}
		next := int64(-1)
		for i, e := range items.Entries {
			rep.Entries++
			rep.Bytes += e.Length
			refsFromIndex[e.Object]++
			entriesOf[e.Object] = append(entriesOf[e.Object], ref{pt.name, pt.id, pt.p, e})
			switch {
			case e.Records > e.Span() || e.Base > e.Last:
				add(2, pt.name, &p, e.Object, "entry [%d,%d] claims %d records", e.Base, e.Last, e.Records)
			case i == 0 && e.Last < start:
				add(2, pt.name, &p, e.Object, "entry [%d,%d] lies wholly below the log start %d", e.Base, e.Last, start)
			case i == 0 && e.Base > start:
				add(2, pt.name, &p, e.Object, "offsets [%d,%d) have no entry (first entry starts at %d)", start, e.Base, e.Base)
			case i > 0 && e.Base != next:
				add(2, pt.name, &p, e.Object, "entry [%d,%d] follows an entry ending at %d (gap or overlap)", e.Base, e.Last, next-1)
			}
			next = e.Last + 1
		}
		switch {
		case len(items.Entries) == 0 && start < end:
			add(2, pt.name, &p, "", "offsets [%d,%d) have no index entries", start, end)
		case len(items.Entries) > 0 && next != end:
			add(2, pt.name, &p, "", "entries end at %d, the log end is %d", next, end)
		}
	}

	// Every object: does it exist, does it hold its slices, is it counted
	// right, is it still wanted?
	listed := map[string]segments.ObjectInfo{}
	for _, prefix := range objectPrefixes {
		for o, err := range bucket.List(ctx, prefix, "") {
			if err != nil {
				return nil, err
			}
			listed[o.Key] = o
		}
	}
	rep.Objects = len(listed)
	all := map[string]bool{}
	for k := range listed {
		all[k] = true
	}
	for k := range refsFromIndex {
		all[k] = true
	}
	keys := slices.Sorted(maps.Keys(all))
	for i := 0; i < len(keys); i += offsets.MaxWriteOps {
		chunk := keys[i:min(i+offsets.MaxWriteOps, len(keys))]
		refs, err := store.ObjectRefs(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for j, k := range chunk {
			ref := refs[j]
			info, stored := listed[k]
			n := refsFromIndex[k]
			switch {
			case n > 0 && !stored:
				add(3, "", nil, k, "%d index entries point at a missing object", n)
				continue
			case n > 0:
				for _, r := range entriesOf[k] {
					if r.e.Offset+r.e.Length > info.Size {
						add(3, "", nil, k, "an entry's slice %d+%d runs past the object's %d bytes", r.e.Offset, r.e.Length, info.Size)
					}
				}
				if opt.Footers {
					footer, err := segments.ReadFooter(ctx, bucket, k)
					if err != nil {
						add(3, "", nil, k, "footer unreadable: %v", err)
					}
					for _, r := range entriesOf[k] {
						if err == nil {
							if d := entryMatchesFooter(r.id, r.p, r.e, footer); d != "" {
								p := r.p
								add(3, r.name, &p, k, "entry [%d,%d]: %s", r.e.Base, r.e.Last, d)
							}
						}
					}
				}
				if !ref.Known || ref.Refs != n {
					add(3, "", nil, k, "reference count %d, but %d index entries point at it", ref.Refs, n)
				}
			case opt.Strict:
				add(3, "", nil, k, "no index entry references it")
			case !ref.Known:
				if age := now.Sub(info.Modified); age > opt.OrphanAge+opt.Slack {
					add(3, "", nil, k, "an upload no commit references, %s old (commit deadline %s)", age.Round(time.Second), opt.OrphanAge)
				}
			case ref.Refs > 0:
				add(3, "", nil, k, "reference count %d, but no index entry points at it (leak)", ref.Refs)
			case now.UnixMilli() > ref.DeleteAfterMs+opt.Slack.Milliseconds():
				add(3, "", nil, k, "unreferenced since before %s, still stored", time.UnixMilli(ref.DeleteAfterMs-opt.GCGrace.Milliseconds()).UTC().Format(time.RFC3339))
			}
		}
	}
	return rep, nil
}

// entryMatchesFooter describes how an index entry disagrees with the
// object's footer ("" if it does not).
func entryMatchesFooter(topicID string, p int32, e offsets.IndexEntry, footer []segments.SliceInfo) string {
	for _, s := range footer {
		if s.Offset != e.Offset || s.Length != e.Length {
			continue
		}
		switch {
		case s.TopicID != topicID || s.Partition != p:
			return fmt.Sprintf("the slice at %d+%d belongs to %s/%d", s.Offset, s.Length, s.TopicID, s.Partition)
		case s.Records != e.Records || s.Span() != e.Span():
			return fmt.Sprintf("the slice holds %d records over %d offsets, the entry says %d over %d", s.Records, s.Span(), e.Records, e.Span())
		case s.BaseOffset >= 0 && s.BaseOffset != e.Base:
			return fmt.Sprintf("the slice starts at offset %d", s.BaseOffset)
		}
		fp, ep := s.StartPoints(), e.StartPoints()
		if len(fp) != len(ep) {
			return fmt.Sprintf("%d points, the footer has %d", len(ep), len(fp))
		}
		for i := range fp {
			if offsets.Point(fp[i]) != ep[i] {
				return fmt.Sprintf("point %d is %+v, the footer's %+v", i, ep[i], fp[i])
			}
		}
		return ""
	}
	return fmt.Sprintf("the footer has no slice at %d+%d", e.Offset, e.Length)
}

func (r *Report) bounds(key string) (Bounds, bool) {
	if r == nil {
		return Bounds{}, false
	}
	b, ok := r.Bounds[key]
	return b, ok
}

// ErrViolations is returned by tools that treat a dirty report as failure.
var ErrViolations = errors.New("fsck found violations")
