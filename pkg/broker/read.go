package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Reads cost what they return. An index entry's points (its slice's sparse
// batch index) say where batches start; a read starts at the point at or
// before the offset it wants and streams a range sized to its budget, batch
// by batch, stopping when the budget is filled. Batches are cached one by
// one, bounded in bytes, keyed by object and byte position: immutable
// objects make that safe, and a merged segment's batches are cached as
// well as an L0 object's. A broker's own appends go into the cache as they
// commit, so tailing consumers of the same process read memory.

// cachedBatch is one batch of a stored slice. raw is the stored batch;
// recs is its decoding, filled the first time a read needs records (a
// batch read past the budget is cached raw: the bytes were paid for).
type cachedBatch struct {
	base int64 // absolute offset of the batch's first offset delta
	span int64
	raw  []byte
	recs []segments.Record
}

func (c *cachedBatch) size() int64 {
	n := int64(len(c.raw)) + 64
	for i := range c.recs {
		n += 48 + int64(len(c.recs[i].Headers))*32
	}
	return n
}

func batchKey(object string, pos int64) string {
	return object + "@" + strconv.FormatInt(pos, 10)
}

// drainLimit: a range stream stopped with at most this much left is read
// to its end (and cached) rather than cut, which would cost the HTTP
// connection it came on.
const drainLimit = 256 << 10

// entryRead reads records of one index entry.
type entryRead struct {
	e    offsets.IndexEntry
	from int64 // first offset wanted
	// need estimates the bytes of slice still wanted (the budget left);
	// at least 1.
	need func() int64
	// visit gets each batch's records (including any below from) and
	// returns false once it wants no more.
	visit func(recs []segments.Record) bool
	// raw, when set instead of visit, gets each batch as stored (not to
	// be modified) and its base offset, without decoding.
	raw func(base int64, raw []byte) bool
	// point is the index of the point to start at (-1: the one holding from).
	point int
}

// readEntry streams the batches of r.e from the point at or before r.from
// until visit has had enough or the slice ends, from the cache where it
// can and otherwise with ranged reads sized by r.need.
func (b *Broker) readEntry(ctx context.Context, r entryRead) error {
	e := r.e
	pts := e.StartPoints()
	i := r.point
	if i < 0 {
		i = pointAt(pts, r.from-e.Base)
	}
	pos, base := pts[i].Pos, e.Base+pts[i].Delta
	// The range must at least reach the end of the stretch holding from.
	mustReach := regionEnd(e, pts, pointAt(pts, r.from-e.Base))
	for pos < e.Length {
		if c, ok := b.batches.get(batchKey(e.Object, e.Offset+pos)); ok && c.base == base {
			more := true
			if r.raw != nil {
				more = r.raw(c.base, c.raw)
			} else {
				recs, err := b.decoded(e, pos, c)
				if err != nil {
					return err
				}
				more = r.visit(recs)
			}
			pos, base = pos+int64(len(c.raw)), base+c.span
			if !more {
				return nil
			}
			continue
		}
		end := rangeEnd(e, pts, max(mustReach, pos+max(r.need(), 1)))
		more, next, nextBase, err := b.readRange(ctx, e, pos, end, base, r)
		if err != nil || !more {
			return err
		}
		pos, base = next, nextBase
	}
	if base != e.Last+1 {
		return fmt.Errorf("%w: %s at %d: batches end at offset %d, the index entry at %d", ErrCorrupt, e.Object, e.Offset, base-1, e.Last)
	}
	return nil
}

// readRange streams [pos, end) of e's slice, visiting batches until visit
// stops, and caches every batch it read. It reports whether the visitor
// wants more and where the next batch starts.
func (b *Broker) readRange(ctx context.Context, e offsets.IndexEntry, pos, end, base int64, r entryRead) (more bool, next, nextBase int64, err error) {
	rc, err := b.bucket.Reader(ctx, e.Object, e.Offset+pos, end-pos)
	if err != nil {
		return false, 0, 0, fmt.Errorf("%w: read %s: %v", ErrObjectStore, e.Object, err)
	}
	defer rc.Close()
	br := segments.NewBatchReader(rc, base, 0)
	wanting := true
	for pos < end {
		rb, err := br.Next()
		if err == io.EOF {
			return false, 0, 0, fmt.Errorf("%w: %s: slice at %d+%d ends at byte %d", ErrCorrupt, e.Object, e.Offset, e.Length, pos)
		}
		if err != nil {
			var fe *segments.FormatError
			if errors.As(err, &fe) {
				return false, 0, 0, fmt.Errorf("%w: %s at %d: %v", ErrCorrupt, e.Object, e.Offset+pos, err)
			}
			return false, 0, 0, fmt.Errorf("%w: read %s: %v", ErrObjectStore, e.Object, err)
		}
		if last := rb.BaseOffset + rb.Header.Span() - 1; last > e.Last {
			return false, 0, 0, fmt.Errorf("%w: %s at %d: a batch ends at offset %d, past the index entry's %d", ErrCorrupt, e.Object, e.Offset+pos, last, e.Last)
		}
		c := &cachedBatch{base: rb.BaseOffset, span: rb.Header.Span(), raw: bytes.Clone(rb.Bytes)}
		switch {
		case wanting && r.raw != nil:
			b.batches.add(batchKey(e.Object, e.Offset+pos), c, c.size())
			wanting = r.raw(c.base, c.raw)
		case wanting:
			recs, err := b.decoded(e, pos, c)
			if err != nil {
				return false, 0, 0, err
			}
			wanting = r.visit(recs)
		default:
			b.batches.add(batchKey(e.Object, e.Offset+pos), c, c.size())
		}
		pos += int64(len(c.raw))
		base += c.span
		if !wanting && end-pos > drainLimit {
			break
		}
	}
	return wanting, pos, base, nil
}

// decoded returns a cached batch's records, decoding (and caching them)
// the first time.
func (b *Broker) decoded(e offsets.IndexEntry, pos int64, c *cachedBatch) ([]segments.Record, error) {
	if c.recs != nil || c.span == 0 {
		return c.recs, nil
	}
	h, err := segments.ReadBatchHeader(c.raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %d: %v", ErrCorrupt, e.Object, e.Offset+pos, err)
	}
	recs := []segments.Record{}
	if !h.Control() {
		rb := segments.RawBatch{Header: h, BaseOffset: c.base, Bytes: c.raw, At: e.Offset + pos}
		if recs, err = b.codec.Records(rb, make([]segments.Record, 0, h.NumRecords)); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, e.Object, err)
		}
	}
	d := &cachedBatch{base: c.base, span: c.span, raw: c.raw, recs: recs}
	b.batches.put(batchKey(e.Object, e.Offset+pos), d, d.size()+decodedBytes(recs, h))
	return recs, nil
}

// decodedBytes is the memory decoded records hold beyond their batch:
// nothing for an uncompressed batch (they alias it), the decompressed
// payload otherwise.
func decodedBytes(recs []segments.Record, h segments.BatchHeader) int64 {
	if h.Compression() == segments.CompressionNone {
		return 0
	}
	n := int64(0)
	for i := range recs {
		n += int64(recs[i].Size())
	}
	return n
}

// pointAt is the index of the last point at or before offset delta d
// (the first point, at delta 0, if d is before it).
func pointAt(pts []offsets.Point, d int64) int {
	return max(sort.Search(len(pts), func(i int) bool { return pts[i].Delta > d })-1, 0)
}

// regionEnd is where the stretch of point i ends.
func regionEnd(e offsets.IndexEntry, pts []offsets.Point, i int) int64 {
	if i+1 < len(pts) {
		return pts[i+1].Pos
	}
	return e.Length
}

// rangeEnd rounds want up to a batch boundary the index knows: the next
// point at or after it, or the slice end. Ranges then never end inside a
// batch.
func rangeEnd(e offsets.IndexEntry, pts []offsets.Point, want int64) int64 {
	for _, p := range pts {
		if p.Pos >= want {
			return p.Pos
		}
	}
	return e.Length
}

// indexPoints converts a slice's points for its index entry: nil when it
// has only the one at its start, which an entry without points implies.
func indexPoints(s segments.SliceInfo) []offsets.Point {
	if len(s.Points) <= 1 {
		return nil
	}
	out := make([]offsets.Point, len(s.Points))
	for i, p := range s.Points {
		out[i] = offsets.Point{Delta: p.Delta, Pos: p.Pos, MaxTs: p.MaxTs}
	}
	return out
}
