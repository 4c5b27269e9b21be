package compactor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Segments are read and written as streams, one batch at a time: a merge
// or a rewrite holds one source batch, the batch being encoded and the
// bucket's upload buffer, never a whole segment.

// upload streams a new segment of one partition slice, written by fill,
// to a fresh key; nothing is stored if fill fails.
func (r *run) upload(ctx context.Context, p partRef, base int64, fill func(*segments.StreamWriter) error) (offsets.ObjectMeta, segments.SliceInfo, error) {
	var rnd [9]byte
	_, _ = rand.Read(rnd[:])
	key := fmt.Sprintf("seg/%02x/%s/%d/%020d-%s", rnd[0], p.topic.ID, p.p, base, hex.EncodeToString(rnd[1:]))
	meta := offsets.ObjectMeta{Key: key, Uploaded: r.cfg.Now()}
	var opts []segments.WriterOption
	if r.cfg.PointInterval > 0 {
		opts = append(opts, segments.WithPointInterval(r.cfg.PointInterval))
	}
	slices, size, err := segments.Upload(ctx, r.bucket, key, fill, opts...)
	if err != nil {
		var fe *segments.FormatError
		if errors.As(err, &fe) || errors.Is(err, errInconsistent) || errors.Is(err, errObjectStore) || errors.Is(err, errNothingRemoved) {
			return meta, segments.SliceInfo{}, err
		}
		return meta, segments.SliceInfo{}, fmt.Errorf("%w: upload %s: %v", errObjectStore, key, err)
	}
	if len(slices) != 1 {
		return meta, segments.SliceInfo{}, fmt.Errorf("segment %s has %d slices, want 1", key, len(slices))
	}
	meta.Size = size
	return meta, slices[0], nil
}

// errInconsistent: a slice does not hold what its index entry says.
var errInconsistent = errors.New("slice does not match its index entry")

// eachBatch streams an entry's slice and calls fn with each validated
// batch (its bytes valid until fn returns), checking the slice tiles the
// entry's offsets and holds its record count.
func (r *run) eachBatch(ctx context.Context, e offsets.IndexEntry, fn func(segments.RawBatch) error) error {
	rc, err := r.bucket.Reader(ctx, e.Object, e.Offset, e.Length)
	if err != nil {
		return fmt.Errorf("%w: read %s: %v", errObjectStore, e.Object, err)
	}
	defer rc.Close()
	br := segments.NewBatchReader(rc, e.Base, 0)
	var records int64
	for {
		b, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var fe *segments.FormatError
			if errors.As(err, &fe) {
				return fmt.Errorf("%s at %d: %w", e.Object, e.Offset, err)
			}
			return fmt.Errorf("%w: read %s: %v", errObjectStore, e.Object, err)
		}
		records += int64(b.Header.NumRecords)
		if err := fn(b); err != nil {
			return err
		}
	}
	n, next := br.Position()
	if n != e.Length || next != e.Last+1 || records != e.Records {
		return fmt.Errorf("%w: %s at %d: %d bytes spanning [%d,%d] with %d records, index says %d bytes, [%d,%d], %d records",
			errInconsistent, e.Object, e.Offset, n, e.Base, next-1, records, e.Length, e.Base, e.Last, e.Records)
	}
	return nil
}

// eachRecord streams an entry's records (control batches skipped); the
// records alias a buffer reused after fn returns.
func (r *run) eachRecord(ctx context.Context, e offsets.IndexEntry, fn func(*segments.Record) error) error {
	var recs []segments.Record
	return r.eachBatch(ctx, e, func(b segments.RawBatch) error {
		if b.Header.Control() {
			return nil
		}
		var err error
		if recs, err = r.codec.Records(b, recs[:0]); err != nil {
			return fmt.Errorf("%s at %d: %w", e.Object, e.Offset, err)
		}
		for i := range recs {
			if err := fn(&recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// indexPoints converts a slice's points for its index entry (nil when
// there is only the one at its start).
func indexPoints(s segments.SliceInfo) []offsets.Point {
	if len(s.Points) <= 1 {
		return nil
	}
	out := make([]offsets.Point, len(s.Points))
	for i, p := range s.Points {
		out[i] = offsets.Point(p)
	}
	return out
}

// mergeRun concatenates a run of entries into one segment. Batches are
// copied as they are (validated on the way): merging never re-encodes, so
// reads return identical records.
func (r *run) mergeRun(ctx context.Context, p partRef, lease *offsets.Lease, run []offsets.IndexEntry) error {
	merged := offsets.IndexEntry{Base: run[0].Base, Last: run[len(run)-1].Last, MinTs: run[0].MinTs, MaxTs: run[0].MaxTs, Level: 1}
	for _, e := range run {
		merged.Records += e.Records
		merged.MinTs, merged.MaxTs = min(merged.MinTs, e.MinTs), max(merged.MaxTs, e.MaxTs)
		merged.Level = max(merged.Level, e.Level+1)
	}
	meta, slice, err := r.upload(ctx, p, merged.Base, func(w *segments.StreamWriter) error {
		if err := w.BeginSlice(p.topic.ID, p.p); err != nil {
			return err
		}
		for _, e := range run {
			if err := r.eachBatch(ctx, e, func(b segments.RawBatch) error { return w.WriteBatch(b.Bytes) }); err != nil {
				return err
			}
		}
		return w.EndSlice(segments.SliceInfo{BaseOffset: merged.Base, Records: merged.Records, LastDelta: merged.Last - merged.Base, MinTimestamp: merged.MinTs, MaxTimestamp: merged.MaxTs})
	})
	if err != nil {
		return err
	}
	merged.Offset, merged.Length, merged.Points = slice.Offset, slice.Length, indexPoints(slice)
	if err := r.replace(ctx, lease, run, merged, meta); err != nil {
		return err
	}
	r.stats.EntriesMerged += len(run)
	r.stats.BytesMerged += merged.Length
	r.stats.SegmentsWritten++
	return nil
}
