package offsets

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lease is a compactor's exclusive claim on a partition's ctl item. Every
// write the holder makes is conditional on the ctl version it last wrote,
// so a compactor whose lease was taken over (after expiry) changes nothing:
// its next write fails with ErrLeaseLost.
type Lease struct {
	TopicID   string
	Partition int32
	Owner     string
	Epoch     int64
	Expires   time.Time
	ctl       Ctl
	version   int64
}

// LogStart is the partition's log start offset as of the lease's last write.
func (l *Lease) LogStart() int64 { return l.ctl.LogStart }

// Cursor is the resume point the holder last saved.
func (l *Lease) Cursor() string { return l.ctl.Cursor }

// MaxReplaceEntries bounds the entries one ReplaceEntries or one trim
// transaction touches: each entry may need its own delete, object-ref and
// GC item, and a transaction holds MaxWriteOps items.
const MaxReplaceEntries = 32

// AcquireLease claims a partition for owner until ttl from now. It fails
// with ErrLeaseHeld while another owner's lease is unexpired; an owner
// re-acquiring its own lease gets a new epoch.
func (s *Store) AcquireLease(ctx context.Context, topicID string, p int32, owner string, ttl time.Duration) (*Lease, error) {
	if owner == "" || ttl <= 0 {
		return nil, invalidf("lease needs an owner and a positive ttl")
	}
	var l *Lease
	err := s.loop(ctx, "acquire lease", func() (bool, error) {
		var c Ctl
		it, err := s.get(ctx, ctlKey(topicID, p), &c)
		if err != nil {
			return false, err
		}
		now := s.now()
		if c.LeaseOwner != "" && c.LeaseOwner != owner && c.LeaseExpiresMs > now.UnixMilli() {
			return false, fmt.Errorf("%w: %s until %s", ErrLeaseHeld, c.LeaseOwner, time.UnixMilli(c.LeaseExpiresMs).UTC().Format(time.RFC3339))
		}
		c.LeaseOwner, c.LeaseEpoch, c.LeaseExpiresMs = owner, c.LeaseEpoch+1, now.Add(ttl).UnixMilli()
		if err := s.t.Write(ctx, Put(ctlKey(topicID, p), it.Version, encode(&c))); err != nil {
			// A refused write may be our own first attempt, retried after its
			// answer was lost: then the lease already holds exactly this claim.
			var again Ctl
			if errors.Is(err, ErrConditionFailed) {
				if it2, gerr := s.get(ctx, ctlKey(topicID, p), &again); gerr == nil && it2.Version == it.Version+1 &&
					again.LeaseOwner == owner && again.LeaseEpoch == c.LeaseEpoch && again.LeaseExpiresMs == c.LeaseExpiresMs {
					l = &Lease{TopicID: topicID, Partition: p, Owner: owner, Epoch: c.LeaseEpoch, Expires: time.UnixMilli(c.LeaseExpiresMs), ctl: again, version: it2.Version}
					return true, nil
				}
			}
			return false, err
		}
		l = &Lease{TopicID: topicID, Partition: p, Owner: owner, Epoch: c.LeaseEpoch, Expires: time.UnixMilli(c.LeaseExpiresMs), ctl: c, version: it.Version + 1}
		return true, nil
	})
	return l, err
}

// writeCtl writes the lease holder's ctl item plus extra ops in one
// transaction, conditional on the lease being intact.
func (s *Store) writeCtl(ctx context.Context, l *Lease, c Ctl, extra []Op) error {
	ops := append([]Op{Put(ctlKey(l.TopicID, l.Partition), l.version, encode(&c))}, extra...)
	err := s.t.Write(ctx, ops...)
	var ce *ConditionError
	if errors.As(err, &ce) && ce.Index == 0 {
		return fmt.Errorf("%w: partition %s/%d epoch %d", ErrLeaseLost, l.TopicID, l.Partition, l.Epoch)
	}
	if err != nil {
		return err
	}
	l.ctl, l.version = c, l.version+1
	return nil
}

// RenewLease extends the lease to ttl from now.
func (s *Store) RenewLease(ctx context.Context, l *Lease, ttl time.Duration) error {
	c := l.ctl
	c.LeaseExpiresMs = s.now().Add(ttl).UnixMilli()
	if err := s.writeCtl(ctx, l, c, nil); err != nil {
		return err
	}
	l.Expires = time.UnixMilli(c.LeaseExpiresMs)
	return nil
}

// SaveCursor records where bounded work stopped, so the next run resumes.
func (s *Store) SaveCursor(ctx context.Context, l *Lease, cursor string) error {
	c := l.ctl
	c.Cursor = cursor
	return s.writeCtl(ctx, l, c, nil)
}

// ReleaseLease gives the partition up early.
func (s *Store) ReleaseLease(ctx context.Context, l *Lease) error {
	c := l.ctl
	c.LeaseOwner, c.LeaseExpiresMs = "", 0
	return s.writeCtl(ctx, l, c, nil)
}

// refDelta accumulates changes to object reference counts in one write.
type refDelta struct {
	s     *Store
	items map[string]Item
	delta map[string]int64
	order []string
	grace time.Duration // how long an object left unreferenced is kept
}

func (s *Store) newRefDelta(ctx context.Context, objects []string) (*refDelta, error) {
	r := &refDelta{s: s, items: map[string]Item{}, delta: map[string]int64{}, grace: s.gcGrace}
	var keys []Key
	for _, o := range objects {
		if _, ok := r.delta[o]; !ok {
			r.delta[o] = 0
			r.order = append(r.order, o)
			keys = append(keys, refKey(o))
		}
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		r.items[r.order[i]] = it
	}
	return r, nil
}

// ops returns the ref updates, and GC entries for counts that reach zero.
func (r *refDelta) ops(size map[string]int64) ([]Op, error) {
	var w tx
	now := r.s.now()
	for _, o := range r.order {
		d := r.delta[o]
		if d == 0 {
			continue
		}
		it := r.items[o]
		var ref ObjectRef
		if it.Exists() {
			if err := decode(it, &ref); err != nil {
				return nil, err
			}
		} else if d < 0 {
			// A reference we never counted: leave it to fsck rather than
			// block compaction on it.
			r.s.log.Warn("dropping a reference to an object without a ref item", "object", o)
			continue
		} else {
			ref.Size, ref.CreatedMs = size[o], now.UnixMilli()
		}
		ref.Refs += d
		if ref.Refs < 0 {
			return nil, fmt.Errorf("offsets: object %s would have %d references", o, ref.Refs)
		}
		if ref.Refs == 0 {
			ref.DeleteAfterMs = now.Add(r.grace).UnixMilli()
			w.put(gcKey(ref.DeleteAfterMs, o), 0, &GCEntry{Object: o, Size: ref.Size, DeleteAfterMs: ref.DeleteAfterMs})
		}
		w.put(refKey(o), it.Version, &ref)
	}
	return w.ops, nil
}

func contiguous(entries []IndexEntry) error {
	for i := 1; i < len(entries); i++ {
		if entries[i].Base != entries[i-1].Last+1 {
			return invalidf("index entries [%d,%d] and [%d,%d] are not contiguous", entries[i-1].Base, entries[i-1].Last, entries[i].Base, entries[i].Last)
		}
	}
	return nil
}

// ReplaceEntries swaps a contiguous run of index entries for one entry
// covering the same offsets in a new object (a merge, or key compaction
// with fewer records), atomically and only if the lease is intact and every
// old entry is unchanged. References move from the old objects to the new
// one; old objects left unreferenced are queued for GC.
func (s *Store) ReplaceEntries(ctx context.Context, l *Lease, old []IndexEntry, merged IndexEntry, obj ObjectMeta) error {
	if len(old) == 0 || len(old) > MaxReplaceEntries {
		return invalidf("replace %d entries; between 1 and %d", len(old), MaxReplaceEntries)
	}
	if err := s.checkAge(obj); err != nil {
		return err
	}
	if err := contiguous(old); err != nil {
		return err
	}
	first, last := old[0], old[len(old)-1]
	merged.Object = obj.Key
	if merged.Base != first.Base || merged.Last != last.Last {
		return invalidf("merged entry [%d,%d] does not cover [%d,%d]", merged.Base, merged.Last, first.Base, last.Last)
	}
	if err := merged.validate(); err != nil {
		return invalidf("%v", err)
	}
	objects := []string{obj.Key}
	var removed int64
	for _, e := range old {
		if e.Object == obj.Key {
			return invalidf("merged object %s is also an old one", obj.Key)
		}
		objects = append(objects, e.Object)
		removed += e.Length
	}
	refs, err := s.newRefDelta(ctx, objects)
	if err != nil {
		return err
	}
	refs.delta[obj.Key]++
	var w tx
	for _, e := range old[:len(old)-1] {
		refs.delta[e.Object]--
		w.del(segKey(l.TopicID, l.Partition, e.Last), e.Version)
	}
	refs.delta[last.Object]--
	merged.CreatedMs = s.nowMs()
	w.put(segKey(l.TopicID, l.Partition, last.Last), last.Version, &merged)
	refOps, err := refs.ops(map[string]int64{obj.Key: obj.Size})
	if err != nil {
		return err
	}
	c := l.ctl
	c.BytesRemoved += removed - merged.Length
	if c.BytesRemoved < 0 {
		c.BytesRemoved = 0
	}
	return s.writeCtl(ctx, l, c, append(w.ops, refOps...))
}

// TrimPrefix advances the log start to newLogStart, deleting drop: the
// first index entries of the partition, in order, all below newLogStart.
// Done in transactions of at most MaxReplaceEntries entries, each moving
// the log start forward, so a crash leaves a consistent, shorter log.
func (s *Store) TrimPrefix(ctx context.Context, l *Lease, drop []IndexEntry, newLogStart int64) error {
	if err := contiguous(drop); err != nil {
		return err
	}
	if newLogStart < l.ctl.LogStart {
		return invalidf("log start cannot move back from %d to %d", l.ctl.LogStart, newLogStart)
	}
	if len(drop) > 0 {
		if drop[0].Base > l.ctl.LogStart {
			return invalidf("entry [%d,%d] is not the first (log start %d)", drop[0].Base, drop[0].Last, l.ctl.LogStart)
		}
		if drop[len(drop)-1].Last >= newLogStart {
			return invalidf("entry ending at %d is not below the new log start %d", drop[len(drop)-1].Last, newLogStart)
		}
	}
	var h Head
	if _, err := s.get(ctx, headKey(l.TopicID, l.Partition), &h); err != nil {
		return err
	}
	if newLogStart > h.LogEnd {
		return invalidf("log start %d beyond log end %d", newLogStart, h.LogEnd)
	}
	for len(drop) > 0 || newLogStart > l.ctl.LogStart {
		chunk := drop[:min(len(drop), MaxReplaceEntries)]
		drop = drop[len(chunk):]
		start := newLogStart
		if len(drop) > 0 {
			start = chunk[len(chunk)-1].Last + 1
		}
		if err := s.dropEntries(ctx, l, chunk, start, s.gcGrace); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) dropEntries(ctx context.Context, l *Lease, chunk []IndexEntry, logStart int64, grace time.Duration) error {
	objects := make([]string, len(chunk))
	var removed int64
	for i, e := range chunk {
		objects[i] = e.Object
		removed += e.Length
	}
	refs, err := s.newRefDelta(ctx, objects)
	if err != nil {
		return err
	}
	refs.grace = grace
	var w tx
	for _, e := range chunk {
		refs.delta[e.Object]--
		w.del(segKey(l.TopicID, l.Partition, e.Last), e.Version)
	}
	refOps, err := refs.ops(nil)
	if err != nil {
		return err
	}
	c := l.ctl
	c.LogStart = max(c.LogStart, logStart)
	c.BytesRemoved += removed
	return s.writeCtl(ctx, l, c, append(w.ops, refOps...))
}

// DueObjects lists objects whose references reached zero and whose grace
// period has passed, oldest first.
func (s *Store) DueObjects(ctx context.Context, limit int) ([]GCEntry, error) {
	to := fmt.Sprintf("%020d$", s.nowMs()) // '$' sorts right after '#'
	items, _, err := s.t.Query(ctx, pkGC, Range{From: "0", To: to}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]GCEntry, len(items))
	for i, it := range items {
		if err := decode(it, &out[i]); err != nil {
			return nil, err
		}
		out[i].Version = it.Version
	}
	return out, nil
}

// ForgetObject removes the bookkeeping of an object the caller has deleted
// from the bucket.
func (s *Store) ForgetObject(ctx context.Context, e GCEntry) error {
	var ref ObjectRef
	it, err := s.get(ctx, refKey(e.Object), &ref)
	if err != nil {
		return err
	}
	var w tx
	w.del(gcKey(e.DeleteAfterMs, e.Object), e.Version)
	if it.Exists() {
		if ref.Refs != 0 {
			return fmt.Errorf("offsets: object %s is queued for deletion but has %d references", e.Object, ref.Refs)
		}
		w.del(refKey(e.Object), it.Version)
	}
	err = s.t.Write(ctx, w.ops...)
	if errors.Is(err, ErrConditionFailed) {
		return nil // another collector forgot it first
	}
	return err
}

// ObjectRefState is an object's reference bookkeeping, for the orphan
// sweep and fsck.
type ObjectRefState struct {
	Known bool // a commit ever counted a reference to it
	ObjectRef
}

// ObjectRefs returns the reference state of objects, in order.
func (s *Store) ObjectRefs(ctx context.Context, objects []string) ([]ObjectRefState, error) {
	keys := make([]Key, len(objects))
	for i, o := range objects {
		keys[i] = refKey(o)
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]ObjectRefState, len(items))
	for i, it := range items {
		if it.Exists() {
			out[i].Known = true
			if err := decode(it, &out[i].ObjectRef); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// PurgePartition removes a deleted topic's partition step by step under a
// lease: index entries (dropping their object references), then producer
// states, head and ctl. It reports done when nothing is left.
func (s *Store) PurgePartition(ctx context.Context, l *Lease) (bool, error) {
	if err := s.markDeleted(ctx, l.TopicID, l.Partition); err != nil {
		return false, err
	}
	entries, more, err := s.Index(ctx, l.TopicID, l.Partition, 0, MaxReplaceEntries)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		// No reader may read a deleted topic (its heads say so before any
		// entry goes): objects only it used are deleted at the next GC,
		// without the grace period that protects readers of live topics.
		return false, s.dropEntries(ctx, l, entries, entries[len(entries)-1].Last+1, 0)
	}
	if more {
		return false, nil
	}
	items, more, err := s.t.Query(ctx, partPK(l.TopicID, l.Partition), Prefix(pidPrefix), MaxWriteOps-2)
	if err != nil {
		return false, err
	}
	var w tx
	for _, it := range items {
		w.del(it.Key, it.Version)
	}
	if !more {
		hi, err := s.t.Get(ctx, headKey(l.TopicID, l.Partition))
		if err != nil {
			return false, err
		}
		if hi[0].Exists() {
			w.del(hi[0].Key, hi[0].Version)
		}
		w.ops = append([]Op{Delete(ctlKey(l.TopicID, l.Partition), l.version)}, w.ops...)
	} else {
		w.ops = append([]Op{Check(ctlKey(l.TopicID, l.Partition), l.version)}, w.ops...)
	}
	err = s.t.Write(ctx, w.ops...)
	var ce *ConditionError
	if errors.As(err, &ce) && ce.Index == 0 {
		return false, ErrLeaseLost
	}
	return err == nil && !more, err
}

// ForgetDeletedTopic drops a deleted topic from the cleanup queue once all
// its partitions are purged.
func (s *Store) ForgetDeletedTopic(ctx context.Context, d DeletedTopic) error {
	return s.t.Write(ctx, Delete(Key{pkDeleted, d.ID}, d.Version))
}

// producerIDBlock is how many producer ids a Store leases at once: the
// shared counter is written once per block, not once per id, so it is not
// a hot item however fast clients start producers.
const producerIDBlock = 100

// AllocateProducerID returns a producer id never handed out before, by any
// process sharing the table. Ids come from blocks this Store leases; ids
// left in a block when the process ends are never used.
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.idNext < s.idLimit {
		s.idNext++
		return s.idNext - 1, nil
	}
	var start int64
	k := Key{pkSeq, "producer-ids"}
	err := s.loop(ctx, "allocate producer ids", func() (bool, error) {
		var c counter
		it, err := s.get(ctx, k, &c)
		if err != nil {
			return false, err
		}
		if c.Next == 0 {
			c.Next = 1000 // ids below are left for tests and manual use
		}
		start = c.Next
		c.Next += producerIDBlock
		err = s.t.Write(ctx, Put(k, it.Version, encode(&c)))
		if errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
			// The write's outcome is unknown. Either way the block is
			// safe to abandon: the counter only moves forward, so the
			// next attempt re-reads it and leases a block after it.
			return false, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return err == nil, err
	})
	if err != nil {
		return 0, err
	}
	s.idNext, s.idLimit = start+1, start+producerIDBlock
	return start, nil
}
