package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// FetchRequest reads records of one partition from Offset on.
type FetchRequest struct {
	Topic      string
	Partition  int32
	Offset     int64
	MaxRecords int           // 0: 1000
	MaxBytes   int           // 0: the response limit; at least one record is always returned
	Wait       time.Duration // long poll: wait up to this long (capped) for data at the log end
}

// FetchResult is what a fetch returns. NextOffset is where the next fetch
// starts; it can move past offsets that key compaction removed.
type FetchResult struct {
	Records    []segments.Record
	NextOffset int64
	LogStart   int64
	LogEnd     int64
}

// indexTTL bounds how long index entries are cached. It must stay well
// below the GC grace period: a cached entry may point at an object a merge
// replaced, which stays readable until the grace period has passed.
const indexTTL = 30 * time.Second

// Fetch reads records from a partition. An offset below the log start or
// beyond the log end is an *OffsetOutOfRangeError; an offset at the log end
// waits up to req.Wait for data, returning as soon as some arrives.
func (b *Broker) Fetch(ctx context.Context, req FetchRequest) (FetchResult, error) {
	t, err := b.topicPartition(ctx, req.Topic, req.Partition)
	if err != nil {
		return FetchResult{}, err
	}
	return b.fetch(ctx, t, req)
}

func (b *Broker) fetch(ctx context.Context, t offsets.Topic, req FetchRequest) (FetchResult, error) {
	maxRecords, maxBytes := b.budget(req.MaxRecords, req.MaxBytes)
	wait := min(max(req.Wait, 0), b.limits.MaxWait)
	if wait <= 0 {
		return b.readOnce(ctx, t, req.Partition, req.Offset, maxRecords, maxBytes)
	}
	deadline := b.waitDeadline(ctx, wait)
	wake := make(chan struct{}, 1)
	// Registered before reading: no append slips between.
	unwatch := b.watch.add(wake, []watchReq{{topic: t, p: req.Partition, known: req.Offset}})
	defer unwatch()
	for {
		res, err := b.readOnce(ctx, t, req.Partition, req.Offset, maxRecords, maxBytes)
		if err != nil || len(res.Records) > 0 || res.NextOffset > req.Offset {
			return res, err
		}
		b.watch.known(wake, t.ID, req.Partition, res.LogEnd)
		left := time.Until(deadline)
		if left <= 0 {
			return res, nil
		}
		timer := time.NewTimer(left)
		select {
		case <-wake:
		case <-timer.C:
		case <-b.draining:
			timer.Stop()
			return res, nil
		case <-ctx.Done():
			timer.Stop()
			return res, ctx.Err()
		}
		timer.Stop()
	}
}

// waitDeadline is when a long poll must answer: after wait, but half a
// second before the context's deadline (a Lambda invocation's), so the
// answer still gets out.
func (b *Broker) waitDeadline(ctx context.Context, wait time.Duration) time.Time {
	deadline := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok {
		deadline = minTime(deadline, time.Now().Add(time.Until(dl)-500*time.Millisecond))
	}
	return deadline
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (b *Broker) budget(maxRecords, maxBytes int) (int, int) {
	if maxRecords <= 0 || maxRecords > 10000 {
		maxRecords = min(max(maxRecords, 0), 10000)
		if maxRecords == 0 {
			maxRecords = 1000
		}
	}
	if maxBytes <= 0 || maxBytes > b.limits.MaxResponseBytes {
		maxBytes = b.limits.MaxResponseBytes
	}
	return maxRecords, maxBytes
}

// readOnce reads what is there now, without waiting.
func (b *Broker) readOnce(ctx context.Context, t offsets.Topic, p int32, off int64, maxRecords, maxBytes int) (FetchResult, error) {
	st, err := b.store.Partitions(ctx, t, p)
	if err != nil {
		return FetchResult{}, err
	}
	return b.readFrom(ctx, t, p, st[0], off, maxRecords, maxBytes)
}

// readFrom reads records of a partition whose state was just read.
func (b *Broker) readFrom(ctx context.Context, t offsets.Topic, p int32, st offsets.PartitionState, off int64, maxRecords, maxBytes int) (FetchResult, error) {
	if st.Deleted {
		b.forgetTopic(t.Name)
		return FetchResult{}, fmt.Errorf("%w: %s", offsets.ErrUnknownTopic, t.Name)
	}
	res := FetchResult{NextOffset: off, LogStart: st.LogStart, LogEnd: st.LogEnd}
	if off < res.LogStart || off > res.LogEnd {
		return res, &OffsetOutOfRangeError{Offset: off, LogStart: res.LogStart, LogEnd: res.LogEnd}
	}
	if maxRecords <= 0 || maxBytes <= 0 {
		return res, nil // budget spent (FetchMany): bounds only
	}
	bytes := 0
	tail := b.trustedTail(st)
	for res.NextOffset < res.LogEnd {
		entries, err := b.entries(ctx, t.ID, p, res.NextOffset, tail)
		if err != nil {
			return res, err
		}
		if len(entries) == 0 || entries[0].Base > res.NextOffset {
			// Retention moved the log start past a cached one (reads of
			// many partitions cache log starts): read it, and answer as a
			// fetch below the log start is answered.
			if fresh, err := b.store.Partitions(ctx, t, p); err == nil {
				b.logStarts.put(partKey(t.ID, p), fresh[0].LogStart, time.Now())
				if res.NextOffset < fresh[0].LogStart {
					if len(res.Records) > 0 {
						return res, nil
					}
					res.LogStart = fresh[0].LogStart
					return res, &OffsetOutOfRangeError{Offset: off, LogStart: fresh[0].LogStart, LogEnd: res.LogEnd}
				}
			}
			return res, fmt.Errorf("%w: no index entry holds offset %d of %s/%d (log end %d)", offsets.ErrUnavailable, res.NextOffset, t.Name, p, res.LogEnd)
		}
		for _, e := range entries {
			full := false
			perRecord := e.Length/max(e.Records, 1) + 1
			err := b.readEntry(ctx, entryRead{
				e: e, from: res.NextOffset, point: -1,
				need: func() int64 {
					return min(int64(maxBytes-bytes), int64(maxRecords-len(res.Records))*perRecord)
				},
				visit: func(recs []segments.Record) bool {
					for _, r := range recs {
						if r.Offset < res.NextOffset {
							continue
						}
						if len(res.Records) >= maxRecords || (len(res.Records) > 0 && bytes+r.Size() > maxBytes) {
							full = true
							return false
						}
						res.Records = append(res.Records, r)
						bytes += r.Size()
						res.NextOffset = r.Offset + 1
					}
					full = len(res.Records) >= maxRecords || bytes >= maxBytes
					return !full
				},
			})
			if err != nil {
				return res, err
			}
			if full {
				return res, nil
			}
			res.NextOffset = max(res.NextOffset, e.Last+1) // past compacted gaps
			if res.NextOffset >= res.LogEnd {
				return res, nil
			}
		}
	}
	return res, nil
}

// entries returns index entries from the one holding off onwards: from
// the cache, the partition's tail entry (see trustedTail), or a query.
func (b *Broker) entries(ctx context.Context, topicID string, p int32, off int64, tail *offsets.IndexEntry) ([]offsets.IndexEntry, error) {
	key := partKey(topicID, p)
	now := time.Now()
	if tail != nil {
		b.index.extend(key, *tail, now)
	}
	if cached := b.index.lookup(key, off, now); len(cached) > 0 {
		return cached, nil
	}
	if tail != nil && tail.Base <= off && off <= tail.Last {
		entries := []offsets.IndexEntry{*tail}
		b.index.store(key, entries, now)
		return entries, nil
	}
	entries, _, err := b.store.Index(ctx, topicID, p, off, 16)
	if err != nil {
		return nil, err
	}
	b.index.store(key, entries, time.Now())
	return entries, nil
}

// trustedTail returns the partition's tail entry if it is young enough
// that its object is certainly still stored: a merge may have replaced
// it at once, but replaced objects stay for the GC grace period.
func (b *Broker) trustedTail(st offsets.PartitionState) *offsets.IndexEntry {
	if st.Tail == nil || b.now().UnixMilli()-st.Tail.CreatedMs > (b.store.GCGrace()/2).Milliseconds() {
		return nil
	}
	return st.Tail
}

// ErrCorrupt: stored data does not match the index. Never expected; it
// means damage or a bug, and is logged and answered with a 500.
var ErrCorrupt = fmt.Errorf("stored data is corrupt")

// OffsetForTimestamp returns the earliest offset whose record timestamp is
// at or after ts (Kafka's offsetsForTimes), or found false (offset = log end).
func (b *Broker) OffsetForTimestamp(ctx context.Context, topic string, p int32, ts int64) (off, recTs int64, found bool, st offsets.PartitionState, err error) {
	t, err := b.topicPartition(ctx, topic, p)
	if err != nil {
		return 0, 0, false, st, err
	}
	states, err := b.store.Partitions(ctx, t, p)
	if err != nil {
		return 0, 0, false, st, err
	}
	st = states[0]
	for from := st.LogStart; from < st.LogEnd; {
		e, ok, err := b.store.EntryForTimestamp(ctx, t.ID, p, from, ts)
		if err != nil || !ok {
			return st.LogEnd, 0, false, st, err
		}
		// Start at the first stretch that may hold the timestamp.
		pts := e.StartPoints()
		k := pointAt(pts, from-e.Base)
		for k+1 < len(pts) && pts[k].MaxTs < ts {
			k++
		}
		err = b.readEntry(ctx, entryRead{
			e: e, from: e.Base + pts[k].Delta, point: k,
			need: func() int64 { return regionEnd(e, pts, k) - pts[k].Pos },
			visit: func(recs []segments.Record) bool {
				for _, r := range recs {
					if r.Offset >= from && r.Timestamp >= ts {
						off, recTs, found = r.Offset, r.Timestamp, true
						return false
					}
				}
				return true
			},
		})
		if err != nil || found {
			return off, recTs, found, st, err
		}
		// Only records below the log start qualified: look further on.
		from = e.Last + 1
	}
	return st.LogEnd, 0, false, st, nil
}

// indexCache keeps recently read index entries per partition.
type indexCache struct {
	mu sync.Mutex
	m  map[string]cachedIndex
}

type cachedIndex struct {
	entries []offsets.IndexEntry // contiguous, ascending
	fetched time.Time
}

func (c *indexCache) lookup(key string, off int64, now time.Time) []offsets.IndexEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci, ok := c.m[key]
	if !ok || now.Sub(ci.fetched) > indexTTL {
		return nil
	}
	i := sort.Search(len(ci.entries), func(i int) bool { return ci.entries[i].Last >= off })
	if i == len(ci.entries) || ci.entries[i].Base > off {
		return nil
	}
	return ci.entries[i:]
}

func (c *indexCache) store(key string, entries []offsets.IndexEntry, now time.Time) {
	if len(entries) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedIndex{}
	}
	if len(c.m) > 10000 {
		clear(c.m) // bounded; a miss costs one query
	}
	c.m[key] = cachedIndex{entries: entries, fetched: now}
}

// extend appends an entry just committed to a partition's cached entries
// when it follows them directly (otherwise the next read queries).
func (c *indexCache) extend(key string, e offsets.IndexEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci, ok := c.m[key]
	if !ok || now.Sub(ci.fetched) > indexTTL || ci.entries[len(ci.entries)-1].Last+1 != e.Base {
		return
	}
	// A new array: readers may hold the old one.
	entries := make([]offsets.IndexEntry, 0, len(ci.entries)+1)
	entries = append(append(entries, ci.entries...), e)
	if len(entries) > 64 {
		entries = entries[len(entries)-64:]
	}
	c.m[key] = cachedIndex{entries: entries, fetched: ci.fetched}
}

// PartitionFetch is one partition's outcome in FetchMany.
type PartitionFetch struct {
	FetchResult
	Err error
}

// MaxFetchPartitions bounds the partitions of one FetchMany.
const MaxFetchPartitions = 1000

// FetchMany reads several partitions with one shared budget of records and
// bytes, in request order. Errors are per partition. If no partition has
// data (and none failed), it waits up to wait for any of them to get some.
func (b *Broker) FetchMany(ctx context.Context, reqs []FetchRequest, maxRecords, maxBytes int, wait time.Duration) []PartitionFetch {
	maxRecords, maxBytes = b.budget(maxRecords, maxBytes)
	out := make([]PartitionFetch, len(reqs))
	topics := make([]offsets.Topic, len(reqs))
	for i, r := range reqs {
		topics[i], out[i].Err = b.topicPartition(ctx, r.Topic, r.Partition)
		out[i].NextOffset = r.Offset
	}
	deadline := b.waitDeadline(ctx, min(max(wait, 0), b.limits.MaxWait))
	wake := make(chan struct{}, 1)
	var watched []watchReq
	for i, r := range reqs {
		if topics[i].ID != "" {
			watched = append(watched, watchReq{topic: topics[i], p: r.Partition, known: r.Offset})
		}
	}
	if wait > 0 {
		unwatch := b.watch.add(wake, watched) // one wake for all: no goroutine per partition
		defer unwatch()
	}
	heads, err := b.headsOf(ctx, reqs, topics)
	for {
		recs, bytes, progress := 0, 0, false
		for i, r := range reqs {
			if topics[i].ID == "" {
				progress = true // a per-partition error is an answer
				continue
			}
			if err != nil {
				out[i] = PartitionFetch{Err: err}
				progress = true
				continue
			}
			res, ferr := b.readFrom(ctx, topics[i], r.Partition, heads[i], r.Offset, maxRecords-recs, maxBytes-bytes)
			out[i] = PartitionFetch{FetchResult: res, Err: ferr}
			if ferr != nil || len(res.Records) > 0 || res.NextOffset > r.Offset {
				progress = true
			}
			recs += len(res.Records)
			for _, rec := range res.Records {
				bytes += rec.Size()
			}
			if wait > 0 {
				b.watch.known(wake, topics[i].ID, r.Partition, res.LogEnd)
			}
		}
		left := time.Until(deadline)
		if progress || left <= 0 || ctx.Err() != nil {
			return out
		}
		if !b.waitWake(ctx, wake, deadline) {
			return out
		}
		heads, err = b.headsOf(ctx, reqs, topics)
	}
}

// headsOf reads the partition states of every request with a topic, in
// batched calls (100 keys each) across topics. Log starts come from a
// cache when it has them (only the compactor moves them, and only
// forward; readFrom re-reads one that turns out stale), so a poll over
// 1,000 partitions reads 1,000 heads: 10 calls.
func (b *Broker) headsOf(ctx context.Context, reqs []FetchRequest, topics []offsets.Topic) ([]offsets.PartitionState, error) {
	now := time.Now()
	var reads []offsets.HeadRead
	var idx []int
	for i := range reqs {
		if topics[i].ID == "" {
			continue
		}
		_, cached := b.logStarts.get(partKey(topics[i].ID, reqs[i].Partition), now)
		reads = append(reads, offsets.HeadRead{TopicID: topics[i].ID, Partition: reqs[i].Partition, WithCtl: !cached})
		idx = append(idx, i)
	}
	states, err := b.store.Heads(ctx, reads)
	if err != nil {
		return nil, err
	}
	out := make([]offsets.PartitionState, len(reqs))
	for j, i := range idx {
		st := states[j]
		key := partKey(reads[j].TopicID, reads[j].Partition)
		if reads[j].WithCtl {
			b.logStarts.put(key, st.LogStart, now)
		} else if start, ok := b.logStarts.get(key, now); ok {
			st.LogStart = min(start, st.LogEnd)
		}
		out[i] = st
	}
	return out, nil
}

// logStartCache keeps partitions' log starts for reads of many
// partitions. Entries last logStartTTL, jittered so that refreshes spread
// over polls instead of coming all at once.
type logStartCache struct {
	mu sync.Mutex
	m  map[string]cachedStart
}

type cachedStart struct {
	start int64
	until time.Time
}

const logStartTTL = 30 * time.Second

func (c *logStartCache) get(key string, now time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.After(e.until) {
		return 0, false
	}
	return e.start, true
}

func (c *logStartCache) put(key string, start int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[string]cachedStart{} // bounded; a miss costs one key in a batch
	}
	ttl := logStartTTL/2 + time.Duration(rand.Int64N(int64(logStartTTL/2)))
	c.m[key] = cachedStart{start: start, until: now.Add(ttl)}
}

// waitWake waits for a wake-up, the deadline, the end of ctx or the
// broker draining; it reports whether time is left to look again.
func (b *Broker) waitWake(ctx context.Context, wake <-chan struct{}, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-wake:
	case <-timer.C:
	case <-ctx.Done():
	case <-b.draining:
	}
	return time.Until(deadline) > 0 && ctx.Err() == nil
}
