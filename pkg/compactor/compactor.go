// Package compactor keeps storage bounded and reads cheap: per partition,
// under a lease, it applies retention (time and size), key compaction for
// cleanup_policy=compact, and merges small index entries into segments of
// the topic's target size; then it purges deleted topics, deletes objects
// whose references reached zero once their grace period passed, and sweeps
// orphans (uploads no commit ever referenced).
//
// A run does bounded work (a time budget below the function timeout) and
// resumes where the last one stopped. Every metadata change is conditional
// on the partition lease, so two compactors at once never corrupt anything:
// the one whose lease was taken over changes nothing. It runs as the
// compact Lambda function on a schedule, on a ticker in `streambed serve`,
// and on demand as `streambed compact`.
package compactor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Config tunes a Compactor. Zero values take the defaults given.
type Config struct {
	// Owner names this compactor in leases (default host-pid-random).
	Owner string
	// Budget bounds a run: no new work starts after it (default 50 s).
	Budget time.Duration
	// LeaseTTL is how long a partition lease lasts (default 5 min).
	LeaseTTL time.Duration
	// MergeMinBytes: a run of small entries is merged once it holds this
	// many bytes (default 4 MiB)...
	MergeMinBytes int64
	// MergeMinAge: ...or once its oldest entry is this old (default 10 min).
	MergeMinAge time.Duration
	// MaxMergesPerPartition bounds one partition's merges per run (default 8).
	MaxMergesPerPartition int
	// KeyCompactMaxBytes skips key compaction of partitions larger than this
	// (their key map would not fit; default 1 GiB).
	KeyCompactMaxBytes int64
	// OrphanAge is the commit deadline: unreferenced uploads older than this
	// are orphans (default 1 h; the store refuses commits of objects older
	// than 15 min).
	OrphanAge time.Duration
	// Compression of rewritten (key-compacted) batches (default zstd).
	Compression *segments.Compression
	Now         func() time.Time
	Logger      *slog.Logger
}

// Stats reports what a run did. They are also the metrics the functions
// publish.
type Stats struct {
	PartitionsVisited int   `json:"partitions_visited"`
	PartitionsBehind  int   `json:"partitions_behind"` // work left for the next run
	EntriesDropped    int   `json:"entries_dropped"`   // retention
	BytesDropped      int64 `json:"bytes_dropped"`
	RecordsRemoved    int64 `json:"records_removed"` // key compaction
	EntriesMerged     int   `json:"entries_merged"`
	BytesMerged       int64 `json:"bytes_merged"`
	SegmentsWritten   int   `json:"segments_written"`
	ObjectsDeleted    int   `json:"objects_deleted"`
	OrphansDeleted    int   `json:"orphans_deleted"`
	TopicsPurged      int   `json:"topics_purged"`
	Errors            int   `json:"errors"`
	DurationMs        int64 `json:"duration_ms"`
}

// Compactor compacts a deployment's storage.
type Compactor struct {
	store  *offsets.Store
	bucket segments.Bucket
	codec  *segments.Codec
	cfg    Config
	log    *slog.Logger
	comp   segments.Compression
}

// New returns a Compactor.
func New(store *offsets.Store, bucket segments.Bucket, cfg Config) *Compactor {
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Budget == 0 {
		cfg.Budget = 50 * time.Second
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 5 * time.Minute
	}
	if cfg.MergeMinBytes == 0 {
		cfg.MergeMinBytes = 4 << 20
	}
	if cfg.MergeMinAge == 0 {
		cfg.MergeMinAge = 10 * time.Minute
	}
	if cfg.MaxMergesPerPartition == 0 {
		cfg.MaxMergesPerPartition = 8
	}
	if cfg.KeyCompactMaxBytes == 0 {
		cfg.KeyCompactMaxBytes = 1 << 30
	}
	if cfg.OrphanAge == 0 {
		cfg.OrphanAge = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	comp := segments.CompressionZstd
	if cfg.Compression != nil {
		comp = *cfg.Compression
	}
	return &Compactor{store: store, bucket: bucket, codec: segments.NewCodec(), cfg: cfg, log: cfg.Logger, comp: comp}
}

// run is one Run's state.
type run struct {
	*Compactor
	deadline time.Time
	stats    Stats
}

func (r *run) timeLeft() bool { return r.cfg.Now().Before(r.deadline) }

// Run does one bounded pass and reports what it did. It returns an error
// only when it could not start; failures within are logged and counted.
func (c *Compactor) Run(ctx context.Context) (Stats, error) {
	start := c.cfg.Now()
	r := &run{Compactor: c, deadline: start.Add(c.cfg.Budget)}
	if dl, ok := ctx.Deadline(); ok && dl.Before(r.deadline) {
		r.deadline = dl
	}
	// Deleted topics first, and their objects at once: on a full disk
	// that is what frees space, and it must not wait behind merges.
	r.purgeDeleted(ctx)
	r.collectGarbage(ctx)
	if err := r.partitions(ctx); err != nil {
		return r.stats, err
	}
	r.collectGarbage(ctx)
	r.sweepOrphans(ctx)
	r.stats.DurationMs = c.cfg.Now().Sub(start).Milliseconds()
	c.log.Info("compaction run", "owner", c.cfg.Owner, "stats", r.stats)
	return r.stats, nil
}

type partRef struct {
	topic offsets.Topic
	p     int32
}

func (p partRef) key() string { return p.topic.Name + "#" + strconv.Itoa(int(p.p)) }

// partitions visits every partition, starting after the one the previous
// run stopped at.
func (r *run) partitions(ctx context.Context) error {
	var all []partRef
	for after := ""; ; {
		topics, next, err := r.store.ListTopics(ctx, after, 1000)
		if err != nil {
			return err
		}
		for _, t := range topics {
			for p := range t.Partitions {
				all = append(all, partRef{t, p})
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	cur, err := r.store.LoadState(ctx, "compactor-partition")
	if err != nil {
		return err
	}
	start := 0
	for i, p := range all {
		if p.key() > cur.Value {
			start = i
			break
		}
	}
	order := append(all[start:len(all):len(all)], all[:start]...)
	last := ""
	defer func() {
		// Resume after the last partition visited (saved in batches: one
		// write per partition would cost more than the work it records).
		if last != "" {
			_, _ = r.store.SaveState(context.WithoutCancel(ctx), cur, last)
		}
	}()
	for i, p := range order {
		if !r.timeLeft() || ctx.Err() != nil {
			r.stats.PartitionsBehind += len(order) - i
			break
		}
		r.stats.PartitionsVisited++
		behind, err := r.partition(ctx, p)
		if err != nil {
			r.stats.Errors++
			r.log.Warn("compacting partition", "topic", p.topic.Name, "partition", p.p, "err", err)
			if errors.Is(err, offsets.ErrThrottled) || errors.Is(err, errObjectStore) {
				r.backOff(ctx)
			}
		}
		if behind {
			r.stats.PartitionsBehind++
		}
		last = p.key()
		if i%50 == 49 {
			if c, err := r.store.SaveState(ctx, cur, last); err == nil {
				cur, last = c, ""
			}
		}
	}
	return nil
}

var errObjectStore = errors.New("object store")

// backOff pauses after throttling (S3 503 SlowDown, DynamoDB throughput),
// on top of the SDK's own retries, and shortens the run.
func (r *run) backOff(ctx context.Context) {
	r.deadline = r.deadline.Add(-2 * time.Second)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// partition compacts one partition under its lease and reports whether
// work is left for a later run.
func (r *run) partition(ctx context.Context, p partRef) (bool, error) {
	lease, err := r.store.AcquireLease(ctx, p.topic.ID, p.p, r.cfg.Owner, r.cfg.LeaseTTL)
	if errors.Is(err, offsets.ErrLeaseHeld) {
		return false, nil // another compactor is on it
	}
	if err != nil {
		return false, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = r.store.ReleaseLease(rctx, lease)
	}()
	cfg := p.topic.Config
	entries, err := r.entries(ctx, p, lease)
	if err != nil {
		return false, err
	}
	if cfg.Delete() {
		if entries, err = r.retention(ctx, p, lease, entries); err != nil {
			return false, err
		}
	}
	behind := false
	if cfg.Compact() {
		more, err := r.keyCompact(ctx, p, lease, entries)
		if err != nil {
			return false, err
		}
		behind = behind || more
		if entries, err = r.entries(ctx, p, lease); err != nil {
			return false, err
		}
	}
	more, err := r.merge(ctx, p, lease, entries)
	return behind || more, err
}

// entries lists a partition's index entries from its log start.
func (r *run) entries(ctx context.Context, p partRef, lease *offsets.Lease) ([]offsets.IndexEntry, error) {
	var out []offsets.IndexEntry
	for from := lease.LogStart(); ; {
		page, more, err := r.store.Index(ctx, p.topic.ID, p.p, from, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !more || len(page) == 0 {
			return out, nil
		}
		from = page[len(page)-1].Last + 1
	}
}

// retention drops whole entries from the front: those whose newest record
// is older than retention_ms, then, while the partition stays at or above
// retention_bytes without it, the oldest (Kafka's rules).
func (r *run) retention(ctx context.Context, p partRef, lease *offsets.Lease, entries []offsets.IndexEntry) ([]offsets.IndexEntry, error) {
	cfg := p.topic.Config
	n := 0
	if cfg.RetentionMs >= 0 {
		cutoff := r.cfg.Now().UnixMilli() - cfg.RetentionMs
		for n < len(entries) && entries[n].MaxTs < cutoff {
			n++
		}
	}
	if cfg.RetentionBytes > 0 {
		var size int64
		for _, e := range entries[n:] {
			size += e.Length
		}
		for n < len(entries) && size-entries[n].Length >= cfg.RetentionBytes {
			size -= entries[n].Length
			n++
		}
	}
	if n == 0 {
		return entries, nil
	}
	drop := entries[:n]
	if err := r.store.TrimPrefix(ctx, lease, drop, drop[n-1].Last+1); err != nil {
		return nil, err
	}
	r.stats.EntriesDropped += n
	for _, e := range drop {
		r.stats.BytesDropped += e.Length
	}
	return entries[n:], nil
}

// readSlice reads an entry's bytes and checks them against the index.
func (r *run) readSlice(ctx context.Context, e offsets.IndexEntry) ([]byte, error) {
	data, err := r.bucket.GetRange(ctx, e.Object, e.Offset, e.Length)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", errObjectStore, e.Object, err)
	}
	if int64(len(data)) != e.Length {
		return nil, fmt.Errorf("%s at %d: %d bytes, index says %d", e.Object, e.Offset, len(data), e.Length)
	}
	st, err := segments.ScanSlice(data)
	if err != nil {
		return nil, fmt.Errorf("%s at %d: %w", e.Object, e.Offset, err)
	}
	if st.Span != e.Span() || st.Records != e.Records {
		return nil, fmt.Errorf("%s at %d: slice spans %d offsets with %d records, index says %d and %d", e.Object, e.Offset, st.Span, st.Records, e.Span(), e.Records)
	}
	return data, nil
}

// upload stores a new segment for a partition.
func (r *run) upload(ctx context.Context, p partRef, base int64, obj []byte) (offsets.ObjectMeta, error) {
	var rnd [9]byte
	_, _ = rand.Read(rnd[:])
	key := fmt.Sprintf("seg/%02x/%s/%d/%020d-%s", rnd[0], p.topic.ID, p.p, base, hex.EncodeToString(rnd[1:]))
	meta := offsets.ObjectMeta{Key: key, Size: int64(len(obj)), Uploaded: r.cfg.Now()}
	if err := r.bucket.Put(ctx, key, obj); err != nil {
		return meta, fmt.Errorf("%w: upload %s: %v", errObjectStore, key, err)
	}
	return meta, nil
}

// replace swaps entries for one written in obj; if the swap is refused,
// the unreferenced object is deleted at once.
func (r *run) replace(ctx context.Context, lease *offsets.Lease, old []offsets.IndexEntry, e offsets.IndexEntry, obj offsets.ObjectMeta) error {
	err := r.store.ReplaceEntries(ctx, lease, old, e, obj)
	if err != nil && (errors.Is(err, offsets.ErrConditionFailed) || errors.Is(err, offsets.ErrLeaseLost) || errors.Is(err, offsets.ErrInvalid)) {
		// A refused swap may still have landed: a transaction retried by
		// the SDK after its first try applied fails its own conditions
		// (DynamoDB deduplicates such retries by token; emulators may not).
		// Delete the new object only if no entry points at it.
		entries, _, ierr := r.store.Index(ctx, lease.TopicID, lease.Partition, old[0].Base, 1)
		if ierr != nil {
			return err // unsure: leave the object to the orphan sweep
		}
		if len(entries) > 0 && entries[0].Object == obj.Key {
			r.log.Info("a refused swap had landed; keeping it", "object", obj.Key)
			return nil
		}
		if derr := r.bucket.Delete(ctx, obj.Key); derr != nil {
			r.log.Warn("deleting an unused segment; the orphan sweep will retry", "object", obj.Key, "err", derr)
		}
	}
	return err
}

// merge concatenates runs of small adjacent entries into segments of up to
// the topic's segment_bytes. Batches are copied as they are: merging never
// re-encodes, so reads return identical records.
func (r *run) merge(ctx context.Context, p partRef, lease *offsets.Lease, entries []offsets.IndexEntry) (bool, error) {
	target := p.topic.Config.SegmentBytes
	now := r.cfg.Now().UnixMilli()
	merges := 0
	for i := 0; i < len(entries); {
		if entries[i].Length >= target/2 {
			i++
			continue
		}
		j, size, oldest := i, int64(0), entries[i].CreatedMs
		for j < len(entries) && j-i < offsets.MaxReplaceEntries && entries[j].Length < target/2 && size+entries[j].Length <= target {
			size += entries[j].Length
			oldest = min(oldest, entries[j].CreatedMs)
			j++
		}
		run := entries[i:j]
		i = j
		if len(run) < 2 || (size < r.cfg.MergeMinBytes && now-oldest < r.cfg.MergeMinAge.Milliseconds()) {
			continue
		}
		if merges == r.cfg.MaxMergesPerPartition || !r.timeLeft() {
			return true, nil
		}
		if err := r.mergeRun(ctx, p, lease, run, size); err != nil {
			return true, err
		}
		merges++
	}
	return false, nil
}

func (r *run) mergeRun(ctx context.Context, p partRef, lease *offsets.Lease, run []offsets.IndexEntry, size int64) error {
	w := segments.NewObjectWriter(int(size))
	if err := w.BeginSlice(p.topic.ID, p.p); err != nil {
		return err
	}
	buf := w.Buffer()
	merged := offsets.IndexEntry{Base: run[0].Base, Last: run[len(run)-1].Last, MinTs: run[0].MinTs, MaxTs: run[0].MaxTs, Level: 1}
	for _, e := range run {
		data, err := r.readSlice(ctx, e)
		if err != nil {
			return err
		}
		buf = append(buf, data...)
		merged.Records += e.Records
		merged.MinTs, merged.MaxTs = min(merged.MinTs, e.MinTs), max(merged.MaxTs, e.MaxTs)
		merged.Level = max(merged.Level, e.Level+1)
	}
	if err := w.EndSlice(buf, segments.SliceInfo{BaseOffset: merged.Base, Records: merged.Records, LastDelta: merged.Last - merged.Base, MinTimestamp: merged.MinTs, MaxTimestamp: merged.MaxTs}); err != nil {
		return err
	}
	obj, slices, err := w.Finish()
	if err != nil {
		return err
	}
	merged.Offset, merged.Length = slices[0].Offset, slices[0].Length
	meta, err := r.upload(ctx, p, merged.Base, obj)
	if err != nil {
		return err
	}
	if err := r.replace(ctx, lease, run, merged, meta); err != nil {
		return err
	}
	r.stats.EntriesMerged += len(run)
	r.stats.BytesMerged += merged.Length
	r.stats.SegmentsWritten++
	return nil
}

// keyCompact rewrites the partition's entries (all but the newest, the
// "active" one) keeping only the latest record per key, in groups of up to
// MaxReplaceEntries entries and segment_bytes. Offsets are preserved (gaps
// are expected, as in Kafka); tombstones are kept until their timestamp is
// delete_retention_ms old. Groups with nothing to remove are left alone.
func (r *run) keyCompact(ctx context.Context, p partRef, lease *offsets.Lease, entries []offsets.IndexEntry) (bool, error) {
	if len(entries) < 2 {
		return false, nil
	}
	var total int64
	for _, e := range entries {
		total += e.Length
	}
	if total > r.cfg.KeyCompactMaxBytes {
		r.log.Warn("partition too large to key-compact in one pass", "topic", p.topic.Name, "partition", p.p, "bytes", total)
		return true, nil
	}
	decoded := make([][]segments.Record, len(entries))
	latest := map[string]int64{}
	for i, e := range entries {
		data, err := r.readSlice(ctx, e)
		if err != nil {
			return false, err
		}
		if decoded[i], err = r.codec.DecodeSlice(data, e.Base, nil); err != nil {
			return false, fmt.Errorf("%s at %d: %w", e.Object, e.Offset, err)
		}
		for _, rec := range decoded[i] {
			if rec.Key != nil {
				latest[string(rec.Key)] = rec.Offset
			}
		}
	}
	tombstoneCutoff := r.cfg.Now().UnixMilli() - p.topic.Config.DeleteRetentionMs
	keep := func(rec segments.Record) bool {
		switch {
		case rec.Key == nil:
			return true // Kafka refuses unkeyed records on compacted topics; we keep them
		case latest[string(rec.Key)] != rec.Offset:
			return false
		case rec.Value == nil:
			return rec.Timestamp >= tombstoneCutoff
		}
		return true
	}
	target := p.topic.Config.SegmentBytes
	candidates := entries[:len(entries)-1]
	for i := 0; i < len(candidates); {
		if !r.timeLeft() {
			return true, nil
		}
		j, size := i, int64(0)
		for j < len(candidates) && j-i < offsets.MaxReplaceEntries && (j == i || size+candidates[j].Length <= target) {
			size += candidates[j].Length
			j++
		}
		group, recs := candidates[i:j], decoded[i:j]
		i = j
		var kept []segments.Record
		total := 0
		for _, rs := range recs {
			total += len(rs)
			for _, rec := range rs {
				if keep(rec) {
					kept = append(kept, rec)
				}
			}
		}
		if len(kept) == total {
			continue
		}
		if err := r.rewrite(ctx, p, lease, group, kept); err != nil {
			return true, err
		}
		r.stats.RecordsRemoved += int64(total - len(kept))
	}
	return false, nil
}

// rewrite replaces group with one sparse batch of the kept records.
func (r *run) rewrite(ctx context.Context, p partRef, lease *offsets.Lease, group []offsets.IndexEntry, kept []segments.Record) error {
	base, last := group[0].Base, group[len(group)-1].Last
	e := offsets.IndexEntry{Base: base, Last: last, Records: int64(len(kept)), Level: 2, MinTs: group[0].MinTs, MaxTs: group[0].MaxTs}
	for _, g := range group {
		e.MinTs, e.MaxTs = min(e.MinTs, g.MinTs), max(e.MaxTs, g.MaxTs)
	}
	w := segments.NewObjectWriter(segments.EstimateBatchSize(kept))
	if err := w.BeginSlice(p.topic.ID, p.p); err != nil {
		return err
	}
	buf, st, err := r.codec.AppendSparseBatch(w.Buffer(), base, last, kept, segments.BatchOptions{Compression: r.comp})
	if err != nil {
		return err
	}
	first := int64(0)
	if len(kept) > 0 {
		first = kept[0].Offset - base
	}
	if err := w.EndSlice(buf, segments.SliceInfo{BaseOffset: base, Records: int64(st.Records), FirstDelta: first, LastDelta: last - base, MinTimestamp: st.MinTimestamp, MaxTimestamp: st.MaxTimestamp}); err != nil {
		return err
	}
	obj, sl, err := w.Finish()
	if err != nil {
		return err
	}
	e.Offset, e.Length = sl[0].Offset, sl[0].Length
	meta, err := r.upload(ctx, p, base, obj)
	if err != nil {
		return err
	}
	if err := r.replace(ctx, lease, group, e, meta); err != nil {
		return err
	}
	r.stats.SegmentsWritten++
	return nil
}

// purgeDeleted removes deleted topics' partitions under leases.
func (r *run) purgeDeleted(ctx context.Context) {
	dels, err := r.store.DeletedTopics(ctx, 100)
	if err != nil {
		r.stats.Errors++
		r.log.Warn("listing deleted topics", "err", err)
		return
	}
	for _, d := range dels {
		done := true
		for p := range d.Partitions {
			if !r.timeLeft() {
				r.stats.PartitionsBehind++
				return
			}
			ok, err := r.purgePartition(ctx, d, p)
			if err != nil {
				r.stats.Errors++
				r.log.Warn("purging a deleted topic", "topic", d.Name, "partition", p, "err", err)
			}
			done = done && ok
		}
		if done {
			if err := r.store.ForgetDeletedTopic(ctx, d); err == nil {
				r.stats.TopicsPurged++
			}
		}
	}
}

func (r *run) purgePartition(ctx context.Context, d offsets.DeletedTopic, p int32) (bool, error) {
	lease, err := r.store.AcquireLease(ctx, d.ID, p, r.cfg.Owner, r.cfg.LeaseTTL)
	if errors.Is(err, offsets.ErrLeaseHeld) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for r.timeLeft() {
		done, err := r.store.PurgePartition(ctx, lease)
		if done {
			return true, nil
		}
		if err != nil {
			// Let the next run (of any compactor) retry at once rather
			// than wait out the lease (a full disk, a storage hiccup).
			_ = r.store.ReleaseLease(ctx, lease)
			return false, err
		}
	}
	return false, r.store.ReleaseLease(ctx, lease)
}

// collectGarbage deletes objects whose references reached zero and whose
// grace period passed: the object first, then its bookkeeping, so a crash
// in between only repeats an idempotent delete.
func (r *run) collectGarbage(ctx context.Context) {
	for r.timeLeft() {
		due, err := r.store.DueObjects(ctx, 500)
		if err != nil {
			r.stats.Errors++
			r.log.Warn("listing objects due for deletion", "err", err)
			return
		}
		for _, e := range due {
			if !r.timeLeft() {
				return
			}
			if err := r.bucket.Delete(ctx, e.Object); err != nil {
				r.stats.Errors++
				r.log.Warn("deleting an unreferenced object", "object", e.Object, "err", err)
				r.backOff(ctx)
				continue
			}
			if err := r.store.ForgetObject(ctx, e); err != nil {
				r.stats.Errors++
				continue
			}
			r.stats.ObjectsDeleted++
		}
		if len(due) < 500 {
			return
		}
	}
}

// objectPrefixes are where Streambed writes objects; the sweep looks
// nowhere else, so a shared bucket's other objects are never touched.
var objectPrefixes = []string{"l0/", "seg/"}

// sweepOrphans deletes uploads older than the commit deadline that no
// commit ever referenced (their commit failed or their writer died). The
// listing resumes across runs from a saved position.
func (r *run) sweepOrphans(ctx context.Context) {
	cur, err := r.store.LoadState(ctx, "compactor-orphans")
	if err != nil {
		r.stats.Errors++
		return
	}
	prefix, after := objectPrefixes[0], ""
	if i := strings.IndexByte(cur.Value, '|'); i > 0 && slices.Contains(objectPrefixes, cur.Value[:i]) {
		prefix, after = cur.Value[:i], cur.Value[i+1:]
	}
	cutoff := r.cfg.Now().Add(-r.cfg.OrphanAge)
	save := func(v string) {
		if c, err := r.store.SaveState(ctx, cur, v); err == nil {
			cur = c
		}
	}
	for pi := slices.Index(objectPrefixes, prefix); pi < len(objectPrefixes); pi++ {
		prefix = objectPrefixes[pi]
		var batch []segments.ObjectInfo
		flush := func() bool {
			if len(batch) == 0 {
				return true
			}
			keys := make([]string, len(batch))
			for i, o := range batch {
				keys[i] = o.Key
			}
			refs, err := r.store.ObjectRefs(ctx, keys)
			if err != nil {
				r.stats.Errors++
				return false
			}
			for i, ref := range refs {
				if ref.Known {
					continue // referenced, or queued for GC with its grace period
				}
				if err := r.bucket.Delete(ctx, keys[i]); err != nil {
					r.stats.Errors++
					continue
				}
				r.stats.OrphansDeleted++
			}
			save(prefix + "|" + keys[len(keys)-1])
			batch = batch[:0]
			return r.timeLeft()
		}
		for o, err := range r.bucket.List(ctx, prefix, after) {
			if err != nil {
				r.stats.Errors++
				r.log.Warn("listing objects for the orphan sweep", "err", err)
				return
			}
			if o.Modified.Before(cutoff) {
				batch = append(batch, o)
			}
			if len(batch) == offsets.MaxWriteOps && !flush() {
				return
			}
		}
		if !flush() {
			return
		}
		after = ""
		if pi+1 < len(objectPrefixes) {
			save(objectPrefixes[pi+1] + "|")
		}
	}
	save("") // a full pass: start over next time
}
