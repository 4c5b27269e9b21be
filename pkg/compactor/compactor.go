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
	// KeyCompactMemory bounds the key map of key compaction (default 256
	// MiB, about 4 million keys): a partition with more keys is compacted
	// over several passes. Everything else a run holds is a few batches
	// and one upload buffer (under 32 MiB).
	KeyCompactMemory int64
	// PointInterval is how far apart the points of written segments are
	// at most, and the size of rewritten batches (default 1 MiB).
	PointInterval int64
	// OrphanAge is the commit deadline: unreferenced uploads older than this
	// are orphans (default 1 h; the store refuses commits of objects older
	// than 15 min).
	OrphanAge time.Duration
	// Compression of rewritten (key-compacted) batches (default segments.DefaultCompression, gzip).
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
	OrphansChecked    int   `json:"orphans_checked"` // objects the sweep looked up
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
	if cfg.KeyCompactMemory == 0 {
		cfg.KeyCompactMemory = 256 << 20
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
	comp := segments.DefaultCompression
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
//
// Partitions get the first 70% of the time budget and stop there; the
// rest is kept for deleting unreferenced objects and sweeping orphans, so
// under continuous load (partitions always behind) garbage still goes.
func (c *Compactor) Run(ctx context.Context) (Stats, error) {
	start := c.cfg.Now()
	end := start.Add(c.cfg.Budget)
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	window := end.Sub(start)
	r := &run{Compactor: c, deadline: start.Add(window * 7 / 10)}
	// Deleted topics first, and their objects at once: on a full disk
	// that is what frees space, and it must not wait behind merges.
	r.purgeDeleted(ctx)
	r.collectGarbage(ctx)
	if err := r.partitions(ctx); err != nil {
		return r.stats, err
	}
	r.deadline = laterOf(r.deadline, start.Add(window*85/100))
	r.collectGarbage(ctx)
	r.deadline = end
	r.sweepOrphans(ctx)
	r.stats.DurationMs = c.cfg.Now().Sub(start).Milliseconds()
	c.log.Info("compaction run", "owner", c.cfg.Owner, "stats", r.stats)
	return r.stats, nil
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
		if err := r.mergeRun(ctx, p, lease, run); err != nil {
			return true, err
		}
		merges++
	}
	return false, nil
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
// listing resumes across runs from a saved position. An object found
// referenced can never become an orphan (losing its references queues it
// for GC instead), so each pass checks only objects too young for the
// previous pass to have checked: a pass costs metadata reads for new
// objects, not for every live one.
func (r *run) sweepOrphans(ctx context.Context) {
	if !r.timeLeft() {
		return
	}
	cur, err := r.store.LoadState(ctx, "compactor-orphans")
	if err != nil {
		r.stats.Errors++
		return
	}
	st := parseSweep(cur.Value)
	cutoff := r.cfg.Now().Add(-r.cfg.OrphanAge)
	if st.passCutoff.IsZero() {
		st.passCutoff = cutoff // a pass starts
	}
	// Objects older than this were checked by the previous pass (less a
	// margin for the object store's clock).
	checked := st.prevCutoff.Add(-min(sweepClockMargin, r.cfg.OrphanAge/4))
	save := func() {
		if c, err := r.store.SaveState(ctx, cur, st.String()); err == nil {
			cur = c
		}
	}
	for pi := slices.Index(objectPrefixes, st.prefix); pi < len(objectPrefixes); pi++ {
		st.prefix = objectPrefixes[pi]
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
			r.stats.OrphansChecked += len(keys)
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
			st.after = keys[len(keys)-1]
			save()
			batch = batch[:0]
			return r.timeLeft()
		}
		listed := 0
		for o, err := range r.bucket.List(ctx, st.prefix, st.after) {
			if err != nil {
				r.stats.Errors++
				r.log.Warn("listing objects for the orphan sweep", "err", err)
				return
			}
			listed++
			if o.Modified.Before(cutoff) && !o.Modified.Before(checked) {
				batch = append(batch, o)
			}
			if len(batch) == offsets.MaxWriteOps && !flush() {
				return
			}
			if listed%1000 == 0 && len(batch) == 0 {
				// Skipping checked objects costs only the listing: still
				// move the cursor, and stop in time.
				st.after = o.Key
				save()
				if !r.timeLeft() {
					return
				}
			}
		}
		if !flush() {
			return
		}
		st.after = ""
		if pi+1 < len(objectPrefixes) {
			st.prefix = objectPrefixes[pi+1]
			save()
		}
	}
	// A full pass: the next one checks only what this one could not.
	st = sweepState{prefix: objectPrefixes[0], prevCutoff: st.passCutoff}
	save()
}

// sweepClockMargin allows for the object store's clock (which stamps
// Modified) differing from the compactor's (a quarter of the orphan age
// if that is less).
const sweepClockMargin = 10 * time.Minute

// sweepState is the orphan sweep's saved position: the listing prefix and
// key it resumes after, the cutoff when the current pass began, and the
// one of the previous complete pass.
type sweepState struct {
	prefix, after          string
	passCutoff, prevCutoff time.Time
}

func (s sweepState) String() string {
	ms := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return "v2|" + ms(s.passCutoff) + "|" + ms(s.prevCutoff) + "|" + s.prefix + "|" + s.after
}

func parseSweep(v string) sweepState {
	st := sweepState{prefix: objectPrefixes[0]}
	parts := strings.SplitN(v, "|", 5)
	if len(parts) != 5 || parts[0] != "v2" || !slices.Contains(objectPrefixes, parts[3]) {
		return st // none yet, or an older form: start a full pass
	}
	at := func(s string) time.Time {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	return sweepState{prefix: parts[3], after: parts[4], passCutoff: at(parts[1]), prevCutoff: at(parts[2])}
}
