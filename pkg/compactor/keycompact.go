package compactor

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Key compaction works within a memory budget, in two passes, as Kafka's
// log cleaner does. Pass one maps, for the "dirty" part of the partition
// (offsets from where the previous pass stopped), each key's hash to its
// latest offset, until the map holds as many keys as the budget allows.
// Pass two rewrites the entries from the log start to the end of the
// mapped part, streaming each record through: a record goes if the map
// knows a later offset for its key. Records past the mapped part are
// kept; the next pass maps them. The newest entry is never rewritten (it
// is still being appended to, as Kafka's active segment), nor mapped.
//
// The map holds 16 bytes of SHA-256 per key: a collision (odds about
// n²/2¹²⁹ for n keys) would drop a record whose key only shares a hash
// with a later one.

// mapEntryBytes is what one key costs in the map: a 16-byte hash, an
// 8-byte offset and the map's own overhead, rounded up.
const mapEntryBytes = 64

type keyHash [16]byte

func hashKey(k []byte) keyHash {
	sum := sha256.Sum256(k)
	return keyHash(sum[:16])
}

// keyMap is a key hash → latest offset map that refuses new keys once it
// holds max of them.
type keyMap struct {
	m   map[keyHash]int64
	max int
}

func newKeyMap(budget int64) *keyMap {
	n := int(max(budget/mapEntryBytes, 1024))
	return &keyMap{m: make(map[keyHash]int64), max: n}
}

// put records off as k's latest offset; false if k is new and the map full.
func (km *keyMap) put(k keyHash, off int64) bool {
	if _, ok := km.m[k]; !ok && len(km.m) >= km.max {
		return false
	}
	km.m[k] = off
	return true
}

// cursorPrefix marks a key compaction cursor in the partition's ctl item:
// the first offset the next pass maps.
const cursorPrefix = "kc1:"

func parseCursor(c string) int64 {
	if v, ok := strings.CutPrefix(c, cursorPrefix); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return 0
}

// errNothingRemoved: a group holds nothing to remove.
var errNothingRemoved = errors.New("nothing to remove")

// keyCompact runs one pass over a partition and reports whether work is
// left for a later run.
func (r *run) keyCompact(ctx context.Context, p partRef, lease *offsets.Lease, entries []offsets.IndexEntry) (bool, error) {
	if len(entries) < 2 {
		return false, nil
	}
	candidates := entries[:len(entries)-1]
	dirty := max(parseCursor(lease.Cursor()), candidates[0].Base)
	end := candidates[len(candidates)-1].Last + 1
	if dirty >= end {
		return false, nil // nothing appended since the last pass
	}

	// Pass one: map the dirty part, as far as the budget goes.
	km := newKeyMap(r.cfg.KeyCompactMemory)
	mapEnd := end
	full := errors.New("map full")
	for _, e := range candidates {
		if e.Last < dirty {
			continue
		}
		err := r.eachRecord(ctx, e, func(rec *segments.Record) error {
			if rec.Offset < dirty || rec.Key == nil {
				return nil
			}
			if !km.put(hashKey(rec.Key), rec.Offset) {
				mapEnd = rec.Offset
				return full
			}
			return nil
		})
		if errors.Is(err, full) {
			break
		}
		if err != nil {
			return false, err
		}
		if !r.timeLeft() {
			return true, nil
		}
	}
	if mapEnd == dirty {
		return false, fmt.Errorf("key compaction budget of %d bytes maps no key", r.cfg.KeyCompactMemory)
	}

	// Pass two: rewrite what the map makes removable, group by group.
	tombstoneCutoff := r.cfg.Now().UnixMilli() - p.topic.Config.DeleteRetentionMs
	keep := func(rec *segments.Record) bool {
		switch {
		case rec.Key == nil || rec.Offset >= mapEnd:
			return true // unkeyed (Kafka refuses them on compacted topics; we keep them), or not mapped yet
		case km.m[hashKey(rec.Key)] > rec.Offset:
			return false // a later record has the key
		case rec.Value == nil:
			return rec.Timestamp >= tombstoneCutoff
		}
		return true
	}
	target := p.topic.Config.SegmentBytes
	for i := 0; i < len(candidates) && candidates[i].Base < mapEnd; {
		if !r.timeLeft() {
			return true, nil
		}
		j, size := i, int64(0)
		for j < len(candidates) && candidates[j].Base < mapEnd && j-i < offsets.MaxReplaceEntries && (j == i || size+candidates[j].Length <= target) {
			size += candidates[j].Length
			j++
		}
		group := candidates[i:j]
		i = j
		removed, err := r.removable(ctx, group, keep)
		if err != nil {
			return true, err
		}
		if !removed {
			continue
		}
		n, err := r.rewrite(ctx, p, lease, group, keep)
		if err != nil {
			return true, err
		}
		r.stats.RecordsRemoved += n
	}
	if err := r.store.SaveCursor(ctx, lease, cursorPrefix+strconv.FormatInt(mapEnd, 10)); err != nil {
		return true, err
	}
	return mapEnd < end, nil
}

// removable reports whether keep refuses any record of group, reading
// only as far as the first one.
func (r *run) removable(ctx context.Context, group []offsets.IndexEntry, keep func(*segments.Record) bool) (bool, error) {
	found := errors.New("found")
	for _, e := range group {
		err := r.eachRecord(ctx, e, func(rec *segments.Record) error {
			if !keep(rec) {
				return found
			}
			return nil
		})
		if errors.Is(err, found) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// rewrite replaces group with one slice of the records keep accepts,
// streamed into sparse batches of about a point interval each (offsets
// preserved, gaps expected, as in Kafka), and returns how many it removed.
func (r *run) rewrite(ctx context.Context, p partRef, lease *offsets.Lease, group []offsets.IndexEntry, keep func(*segments.Record) bool) (int64, error) {
	base, last := group[0].Base, group[len(group)-1].Last
	e := offsets.IndexEntry{Base: base, Last: last, Level: 2, MinTs: -1, MaxTs: -1}
	var removed int64
	meta, slice, err := r.upload(ctx, p, base, func(w *segments.StreamWriter) error {
		if err := w.BeginSlice(p.topic.ID, p.p); err != nil {
			return err
		}
		bw := batchWriter{w: w, codec: r.codec, opt: segments.BatchOptions{Compression: r.comp}, next: base, limit: r.batchBytes()}
		for _, g := range group {
			err := r.eachRecord(ctx, g, func(rec *segments.Record) error {
				if !keep(rec) {
					removed++
					return nil
				}
				return bw.add(rec)
			})
			if err != nil {
				return err
			}
		}
		if err := bw.finish(last); err != nil {
			return err
		}
		if removed == 0 {
			return errNothingRemoved // changed since removable looked: leave it
		}
		e.Records, e.MinTs, e.MaxTs = bw.records, bw.minTs, bw.maxTs
		first := int64(0)
		if bw.first >= 0 {
			first = bw.first - base
		}
		return w.EndSlice(segments.SliceInfo{BaseOffset: base, Records: bw.records, FirstDelta: first, LastDelta: last - base, MinTimestamp: bw.minTs, MaxTimestamp: bw.maxTs})
	})
	if errors.Is(err, errNothingRemoved) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	e.Offset, e.Length, e.Points = slice.Offset, slice.Length, indexPoints(slice)
	if err := r.replace(ctx, lease, group, e, meta); err != nil {
		return 0, err
	}
	r.stats.SegmentsWritten++
	return removed, nil
}

func (r *run) batchBytes() int {
	if r.cfg.PointInterval > 0 {
		return int(r.cfg.PointInterval)
	}
	return segments.DefaultPointInterval
}

// batchWriter gathers kept records (copied: the source buffer is reused)
// into sparse batches of about limit bytes that tile the rewritten range.
type batchWriter struct {
	w     *segments.StreamWriter
	codec *segments.Codec
	opt   segments.BatchOptions
	limit int

	next    int64 // first offset the pending batch covers
	pending []segments.Record
	arena   []byte
	size    int
	buf     []byte

	records      int64
	first        int64
	minTs, maxTs int64
	started      bool
}

// maxBatchSpan keeps a batch's offset range within what its int32 offset
// deltas can express.
const maxBatchSpan = 1 << 30

func (bw *batchWriter) add(rec *segments.Record) error {
	if !bw.started {
		bw.started, bw.first, bw.minTs, bw.maxTs = true, rec.Offset, rec.Timestamp, rec.Timestamp
	}
	for rec.Offset-bw.next >= maxBatchSpan {
		end := bw.next + maxBatchSpan - 1
		if len(bw.pending) > 0 {
			end = bw.pending[len(bw.pending)-1].Offset
		}
		if err := bw.flush(end); err != nil {
			return err
		}
	}
	c := segments.Record{Offset: rec.Offset, Timestamp: rec.Timestamp, Key: bw.keep(rec.Key), Value: bw.keep(rec.Value)}
	for _, h := range rec.Headers {
		c.Headers = append(c.Headers, segments.Header{Key: h.Key, Value: bw.keep(h.Value)})
	}
	bw.pending = append(bw.pending, c)
	bw.size += c.Size()
	bw.records++
	bw.minTs, bw.maxTs = min(bw.minTs, rec.Timestamp), max(bw.maxTs, rec.Timestamp)
	if bw.size >= bw.limit {
		return bw.flush(rec.Offset)
	}
	return nil
}

// keep copies b into the arena (nil stays nil: a null key or tombstone).
func (bw *batchWriter) keep(b []byte) []byte {
	if b == nil {
		return nil
	}
	if cap(bw.arena)-len(bw.arena) < len(b) {
		// A fresh arena: earlier pending records keep pointing at the old.
		bw.arena = make([]byte, 0, max(bw.limit, len(b)))
	}
	at := len(bw.arena)
	bw.arena = append(bw.arena, b...)
	return bw.arena[at:len(bw.arena):len(bw.arena)]
}

// flush writes the pending records as one batch covering [next, last].
func (bw *batchWriter) flush(last int64) error {
	var err error
	bw.buf, _, err = bw.codec.AppendSparseBatch(bw.buf[:0], bw.next, last, bw.pending, bw.opt)
	if err != nil {
		return err
	}
	if err := bw.w.WriteBatch(bw.buf); err != nil {
		return err
	}
	bw.next = last + 1
	bw.pending = bw.pending[:0]
	bw.arena = bw.arena[:0]
	bw.size = 0
	return nil
}

// finish writes what is pending, the last batch covering up to last (an
// empty one if nothing is pending, so the range stays tiled).
func (bw *batchWriter) finish(last int64) error {
	for bw.next <= last {
		end := min(last, bw.next+maxBatchSpan-1)
		if err := bw.flush(end); err != nil {
			return err
		}
	}
	if !bw.started {
		bw.minTs, bw.maxTs, bw.first = -1, -1, -1
	}
	return nil
}
