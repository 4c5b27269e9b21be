package offsets

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ObjectMeta describes an uploaded segment object about to be committed.
type ObjectMeta struct {
	Key  string
	Size int64
	// Uploaded is when the upload started. The orphan sweep deletes
	// unreferenced objects older than its commit deadline, so the store
	// refuses to reference an object older than the maximum commit age
	// (WithMaxCommitAge), whatever stalled its writer.
	Uploaded time.Time
}

// checkAge refuses objects too old to reference safely.
func (s *Store) checkAge(obj ObjectMeta) error {
	if !obj.Uploaded.IsZero() && s.now().Sub(obj.Uploaded) > s.maxCommitAge {
		return fmt.Errorf("%w: object %s was uploaded %s ago, past the %s commit limit; the orphan sweep will remove it", ErrUnavailable, obj.Key, s.now().Sub(obj.Uploaded).Round(time.Second), s.maxCommitAge)
	}
	return nil
}

// ProducerBatch identifies an idempotent producer's batch (KIP-98).
type ProducerID struct {
	ID       int64
	Epoch    int16
	FirstSeq int32
}

// Append is one partition's slice of an uploaded object, to be appended.
type Append struct {
	Partition int32
	Offset    int64 // byte range of the slice in the object
	Length    int64
	Records   int64 // records in the slice (they get dense offsets)
	MinTs     int64
	MaxTs     int64
	Bytes     int64 // counted against retention_bytes
	// Points is the slice's sparse batch index (nil: one point at its start).
	Points []Point
	// Producer is set for idempotent appends.
	Producer *ProducerID
	// ExpectedOffset, when >= 0, must equal the log end offset.
	ExpectedOffset int64
	// FenceToken, when non-nil, must equal the partition's fencing token.
	FenceToken *string
	// Partitions, when > 0, is the partition count the records were
	// partitioned with by key: if the topic has grown past it, the append
	// fails with ErrStalePartitionCount.
	Partitions int32
}

// AppendResult is the outcome for one Append. Err is a state error for this
// partition only (ErrOutOfOrderSequence, ErrProducerFenced,
// ErrExpectedOffsetMismatch, ErrFenced, ErrUnknownTopic, ErrUnavailable).
type AppendResult struct {
	Partition int32
	Base      int64
	Last      int64
	LogEnd    int64
	Duplicate bool // a retry of an already committed batch: original offsets
	// Partitions is the topic's partition count as the commit knew it:
	// producers that partition by key refresh when it exceeds theirs.
	Partitions int32
	Err        error
}

// Commit makes the slices of an uploaded object visible, atomically per
// transaction: for every partition it advances the log end by the slice's
// record count, adds an index entry, updates the producer's state and
// counts a reference to the object, on the condition that every head is
// still what was read. Lost races are retried with a fresh read; partitions
// that fail validation get their own error and the rest still commit.
//
// An append spanning more partitions than one transaction holds is split
// into several transactions; each partition is still all or nothing. If a
// write's outcome is unknown (a timeout), the next attempt finds out from
// the index whether it landed, so nothing is committed twice.
//
// The returned error is for the request as a whole (a canceled context);
// per-partition outcomes are in the results, in the order of appends.
func (s *Store) Commit(ctx context.Context, t Topic, obj ObjectMeta, appends []Append) ([]AppendResult, error) {
	r, err := s.CommitObject(ctx, t, obj, appends, nil)
	return r.Results, err
}

// CommitResult is the outcome of CommitObject.
type CommitResult struct {
	Results []AppendResult
	// Unreferenced is true only when no write that could make anything
	// point at the object was ever sent: the caller may delete it at once.
	// Otherwise the object belongs to its reference count and the orphan
	// sweep — even when every append turned out a duplicate or failed,
	// since a write that timed out may still land, and a re-read that saw
	// "duplicate" may have seen some of its items and not others.
	Unreferenced bool
}

// CommitObject is Commit, also reporting whether the object may be
// referenced. With idem, the commit is (part of) an Idempotency-Key
// request: partitions it already committed answer as duplicates, and a
// record of the key with other content fails every append with
// ErrIdempotencyKeyReused.
func (s *Store) CommitObject(ctx context.Context, t Topic, obj ObjectMeta, appends []Append, idem *Idempotent) (CommitResult, error) {
	res := make([]AppendResult, len(appends))
	pending := make([]int, 0, len(appends))
	seen := make(map[int32]bool, len(appends))
	for i, a := range appends {
		res[i].Partition = a.Partition
		switch {
		case a.Partition < 0 || a.Partition >= t.Partitions:
			res[i].Err = fmt.Errorf("%w: %s has partitions 0..%d, not %d", ErrUnknownPartition, t.Name, t.Partitions-1, a.Partition)
		case seen[a.Partition] && idem != nil:
			res[i].Err = invalidf("partition %d appears twice in one Idempotency-Key commit", a.Partition)
		case a.Records < 1 || a.Records > math.MaxInt32 || a.Length < 0 || a.Offset < 0:
			res[i].Err = invalidf("partition %d: %d records in %d bytes", a.Partition, a.Records, a.Length)
		default:
			seen[a.Partition] = true
			pending = append(pending, i)
		}
	}
	if obj.Key == "" {
		return CommitResult{Unreferenced: true}, invalidf("commit without an object key")
	}
	c := &commit{s: s, t: t, obj: obj, appends: appends, res: res, attempted: map[int][]Key{}, idem: idem}
	err := s.loop(ctx, "commit", func() (bool, error) {
		if err := s.checkAge(obj); err != nil {
			return false, err
		}
		var err error
		pending, err = c.attempt(ctx, pending)
		return len(pending) == 0, err
	})
	out := CommitResult{Results: res, Unreferenced: !c.wrote}
	if err != nil {
		if ctx.Err() != nil {
			return CommitResult{Unreferenced: !c.wrote}, ctx.Err()
		}
		for _, i := range pending {
			res[i].Err = err
			if len(c.attempted[i]) > 0 && !IsRetryable(err) {
				// A refusal now does not undo an earlier write whose
				// answer was lost: the outcome is unknown.
				res[i].Err = fmt.Errorf("%w: an earlier attempt's outcome is unknown, then: %w", ErrUnavailable, err)
			}
		}
	}
	return out, nil
}

// commit is the state of one Commit call across attempts.
type commit struct {
	s       *Store
	t       Topic
	obj     ObjectMeta
	appends []Append
	res     []AppendResult
	// attempted maps an append to every index key an attempt tried to
	// write, so a later attempt can tell whether an ambiguous write landed
	// (each attempt may have chosen a different key).
	attempted map[int][]Key
	// wrote is set once a write referencing the object has been sent.
	wrote bool
	idem  *Idempotent
}

// attempt reads the current state of the pending partitions, decides each,
// and writes the accepted ones in as few transactions as fit. It returns
// the appends still pending.
func (c *commit) attempt(ctx context.Context, pending []int) ([]int, error) {
	keys := make([]Key, 0, 3*len(pending)+2)
	keys = append(keys, refKey(c.obj.Key))
	if c.idem != nil {
		keys = append(keys, c.idem.Ref.key)
	}
	for _, i := range pending {
		a := c.appends[i]
		keys = append(keys, headKey(c.t.ID, a.Partition))
		if a.Producer != nil {
			keys = append(keys, producerKey(c.t.ID, a.Partition, a.Producer.ID))
		}
		keys = append(keys, c.attempted[i]...)
	}
	items, err := c.s.getMany(ctx, keys)
	if err != nil {
		return pending, err
	}
	byKey := make(map[Key]Item, len(items))
	for _, it := range items {
		byKey[it.Key] = it
	}
	refItem := byKey[refKey(c.obj.Key)]
	var ref ObjectRef
	if refItem.Exists() {
		if err := decode(refItem, &ref); err != nil {
			return pending, err
		}
	}

	idem, err := c.readIdem(byKey)
	if err != nil {
		return pending, err
	}
	if idem != nil && idem.rec.Digest != c.idem.Digest {
		for _, i := range pending {
			c.res[i].Err = fmt.Errorf("%w: the key's first request had other records", ErrIdempotencyKeyReused)
		}
		return nil, nil
	}

	now := c.s.now()
	heads := map[int32]*partState{}
	producers := map[Key]*prodState{}
	var acc []accepted
	var still []int
	for _, i := range pending {
		a := c.appends[i]
		if idem != nil {
			if d, ok := idem.rec.done(a.Partition); ok {
				c.res[i] = AppendResult{Partition: a.Partition, Base: d.Base, Last: d.Last, LogEnd: d.Last + 1, Duplicate: true, Partitions: c.t.Partitions}
				continue
			}
		}
		// Did an earlier, ambiguous attempt commit this append?
		if e, ok, err := c.landed(i, byKey); err != nil {
			return pending, err
		} else if ok {
			c.res[i] = AppendResult{Partition: a.Partition, Base: e.Base, Last: e.Last, LogEnd: e.Last + 1, Partitions: c.t.Partitions}
			continue
		}
		hs := heads[a.Partition]
		if hs == nil {
			hs = &partState{key: headKey(c.t.ID, a.Partition)}
			if it := byKey[hs.key]; it.Exists() {
				if err := decode(it, &hs.h); err != nil {
					return pending, err
				}
				hs.version = it.Version
			}
			heads[a.Partition] = hs
		}
		var ps *prodState
		if p := a.Producer; p != nil {
			k := producerKey(c.t.ID, a.Partition, p.ID)
			if ps = producers[k]; ps == nil {
				ps = &prodState{key: k}
				if it := byKey[k]; it.Exists() {
					ps.version = it.Version
					if it.TTL == 0 || it.TTL > now.Unix() {
						if err := decode(it, &ps.st); err != nil {
							return pending, err
						}
						ps.known = true
					}
				}
				producers[k] = ps
			}
		}
		ac, r, ok := c.decide(a, hs, ps, now)
		if !ok {
			c.res[i] = r
			continue
		}
		ac.i = i
		k := segKey(c.t.ID, a.Partition, ac.entry.Last)
		for _, e := range c.attempted[i] {
			if e != k {
				ac.earlier = append(ac.earlier, e)
			}
		}
		if !slices.Contains(c.attempted[i], k) {
			c.attempted[i] = append(c.attempted[i], k)
		}
		acc = append(acc, ac)
	}
	if len(acc) == 0 {
		return nil, nil
	}

	// Pack accepted appends, in order, into transactions: each writes a
	// partition's head once (as of its last append in it), every index
	// entry, each producer's state once, and the object-ref update.
	refVersion := refItem.Version
	var firstErr error
	for start := 0; start < len(acc); {
		end, w, touched := c.pack(acc, start, now)
		chunk := acc[start:end]
		ref.Refs += int64(len(chunk))
		if refVersion == 0 {
			ref.Size, ref.CreatedMs = c.obj.Size, now.UnixMilli()
		}
		w.put(refKey(c.obj.Key), refVersion, &ref)
		if idem != nil {
			var added []IdemPart
			for _, a := range chunk {
				added = append(added, IdemPart{Partition: a.r.Partition, Base: a.r.Base, Last: a.r.Last})
			}
			w.ops = append(w.ops, c.idemOp(idem, added))
		}
		c.wrote = true
		err := c.s.t.Write(ctx, w.ops...)
		if err != nil {
			// This chunk is undecided (lost a race, or unknown); later chunks
			// would condition on versions we no longer know. Re-read.
			for _, a := range acc[start:] {
				still = append(still, a.i)
			}
			firstErr = err
			break
		}
		refVersion++
		if idem != nil {
			idem.version++
		}
		for _, v := range touched {
			*v++
		}
		for _, a := range chunk {
			c.res[a.i] = a.r
		}
		start = end
	}
	if firstErr != nil && !retryable(firstErr) && !errors.Is(firstErr, ErrRefused) {
		// Ambiguous (timeout, connection reset): treat as retryable, the
		// next attempt checks the index for what landed.
		c.s.log.Debug("commit write outcome unknown; re-reading", "object", c.obj.Key, "err", firstErr)
		firstErr = fmt.Errorf("%w: %v", ErrConflict, firstErr)
	}
	return still, firstErr
}

// landed reports the index entry an earlier attempt wrote for append i,
// if one of them is there.
func (c *commit) landed(i int, byKey map[Key]Item) (IndexEntry, bool, error) {
	for _, k := range c.attempted[i] {
		it := byKey[k]
		if !it.Exists() {
			continue
		}
		var e IndexEntry
		if err := decode(it, &e); err != nil {
			return e, false, err
		}
		if e.Object == c.obj.Key && e.Offset == c.appends[i].Offset {
			return e, true, nil
		}
	}
	return IndexEntry{}, false, nil
}

// partState is a partition's head as an attempt decides its appends in
// order; version is the item's version as of the last write.
type partState struct {
	key     Key
	h       Head
	version int64
}

// prodState is an idempotent producer's state on one partition, likewise.
type prodState struct {
	key     Key
	st      ProducerState
	known   bool
	version int64
}

// accepted is an append decided to commit: its index entry and the head
// and producer state as of it (a later append of the same partition in
// the same commit starts from them).
type accepted struct {
	i     int
	entry IndexEntry
	head  Head
	hs    *partState
	prod  ProducerState
	ps    *prodState
	r     AppendResult
	// earlier is the index keys earlier attempts wrote for this append
	// under other offsets. The write requires them absent: a torn read
	// can miss an ambiguous earlier write that landed while it read (and
	// see the head it moved), and without the check the append would be
	// committed a second time after it.
	earlier []Key
}

// decide validates one append against its partition's head and producer
// state, as left by the appends before it. If it commits, the states are
// advanced and ok is true; otherwise r is its final result.
func (c *commit) decide(a Append, hs *partState, ps *prodState, now time.Time) (ac accepted, r AppendResult, ok bool) {
	r = AppendResult{Partition: a.Partition}
	h := &hs.h
	r.LogEnd = h.LogEnd
	r.Partitions = max(h.Partitions, c.t.Partitions)
	if a.Partitions > 0 && h.Partitions > a.Partitions {
		r.Err = fmt.Errorf("%w: %s has %d partitions, the records were partitioned for %d", ErrStalePartitionCount, c.t.Name, h.Partitions, a.Partitions)
		return ac, r, false
	}
	if h.Deleted {
		r.Err = fmt.Errorf("%w: %s (deleted)", ErrUnknownTopic, c.t.Name)
		return ac, r, false
	}
	if a.FenceToken != nil && *a.FenceToken != h.FenceToken {
		r.Err = fmt.Errorf("%w: partition %d", ErrFenced, a.Partition)
		return ac, r, false
	}
	var st ProducerState
	if p := a.Producer; p != nil {
		lastSeq := seqAdd(p.FirstSeq, a.Records-1)
		var dup *ProducerBatch
		var err error
		st, dup, err = checkSequence(ps.st, ps.known, p, lastSeq, a.Partition)
		if err != nil {
			r.Err = err
			return ac, r, false
		}
		if dup != nil {
			r.Base, r.Last, r.Duplicate = dup.Base, dup.Last, true
			return ac, r, false
		}
	}
	if a.ExpectedOffset >= 0 && a.ExpectedOffset != h.LogEnd {
		r.Err = &OffsetMismatchError{Expected: a.ExpectedOffset, LogEnd: h.LogEnd}
		return ac, r, false
	}

	base, last := h.LogEnd, h.LogEnd+a.Records-1
	e := IndexEntry{
		Base: base, Last: last, Records: a.Records, Object: c.obj.Key, Offset: a.Offset, Length: a.Length,
		MinTs: a.MinTs, MaxTs: a.MaxTs, CreatedMs: now.UnixMilli(), Points: a.Points,
	}
	h.LogEnd = last + 1
	h.Tail = &e
	h.Bytes += a.Bytes
	h.LastAppendMs = now.UnixMilli()
	h.MaxTimestamp = max(h.MaxTimestamp, a.MaxTs)
	ac = accepted{entry: e, head: *h, hs: hs}
	if p := a.Producer; p != nil {
		st.Batches = append(slices.Clone(st.Batches), ProducerBatch{FirstSeq: p.FirstSeq, LastSeq: st.LastSeq, Base: base, Last: last})
		if len(st.Batches) > MaxProducerBatches {
			st.Batches = st.Batches[len(st.Batches)-MaxProducerBatches:]
		}
		st.UpdatedMs = now.UnixMilli()
		ps.st, ps.known = st, true
		ac.prod, ac.ps = st, ps
	}
	r.Base, r.Last, r.LogEnd = base, last, last+1
	ac.r = r
	return ac, r, true
}

// pack builds the transaction of acc[start:end], as many appends as fit
// beside the object-ref and idempotency items. It returns end, the write,
// and the versions to advance once it succeeds.
func (c *commit) pack(acc []accepted, start int, now time.Time) (int, tx, []*int64) {
	const room = MaxWriteOps - 2
	lastHead := map[*partState]*Head{}
	lastProd := map[*prodState]*ProducerState{}
	var hsOrder []*partState
	var psOrder []*prodState
	var segs tx
	var checks []Op
	end := start
	for ; end < len(acc); end++ {
		a := &acc[end]
		need := 1 + len(a.earlier)
		if _, ok := lastHead[a.hs]; !ok {
			need++
		}
		if a.ps != nil {
			if _, ok := lastProd[a.ps]; !ok {
				need++
			}
		}
		if len(segs.ops)+len(checks)+len(hsOrder)+len(psOrder)+need > room && end > start {
			break
		}
		if _, ok := lastHead[a.hs]; !ok {
			hsOrder = append(hsOrder, a.hs)
		}
		lastHead[a.hs] = &a.head
		if a.ps != nil {
			if _, ok := lastProd[a.ps]; !ok {
				psOrder = append(psOrder, a.ps)
			}
			lastProd[a.ps] = &a.prod
		}
		segs.put(segKey(c.t.ID, a.r.Partition, a.entry.Last), 0, &a.entry)
		for _, k := range a.earlier {
			checks = append(checks, Check(k, 0))
		}
	}
	// A key this transaction puts is required absent by its put already
	// (and a transaction may name an item once).
	for _, ck := range checks {
		if !slices.ContainsFunc(segs.ops, func(op Op) bool { return op.Key == ck.Key }) {
			segs.ops = append(segs.ops, ck)
		}
	}
	var w tx
	var touched []*int64
	for _, hs := range hsOrder {
		w.put(hs.key, hs.version, lastHead[hs])
		touched = append(touched, &hs.version)
	}
	w.ops = append(w.ops, segs.ops...)
	for _, ps := range psOrder {
		w.putTTL(ps.key, ps.version, lastProd[ps], now.Add(c.s.producerTTL).Unix())
		touched = append(touched, &ps.version)
	}
	return end, w, touched
}

// checkSequence applies KIP-98's rules to a batch and returns the updated
// state, or the remembered batch it duplicates.
func checkSequence(ps ProducerState, known bool, p *ProducerID, lastSeq int32, part int32) (ProducerState, *ProducerBatch, error) {
	switch {
	case p.ID < 0 || p.Epoch < 0 || p.FirstSeq < 0:
		return ps, nil, invalid("producer", "id %d, epoch %d and sequence %d must not be negative", p.ID, p.Epoch, p.FirstSeq)
	case !known || p.Epoch > ps.Epoch:
		// A new producer, or a new epoch fencing the old one: start at 0.
		if p.FirstSeq != 0 {
			what := "unknown producer"
			if known {
				what = fmt.Sprintf("new epoch %d (was %d)", p.Epoch, ps.Epoch)
			}
			return ps, nil, fmt.Errorf("%w: partition %d: %s must start at sequence 0, not %d", ErrOutOfOrderSequence, part, what, p.FirstSeq)
		}
		return ProducerState{Epoch: p.Epoch, LastSeq: lastSeq}, nil, nil
	case p.Epoch < ps.Epoch:
		return ps, nil, fmt.Errorf("%w: partition %d: epoch %d, current is %d", ErrProducerFenced, part, p.Epoch, ps.Epoch)
	}
	for i := range ps.Batches {
		if b := &ps.Batches[i]; b.FirstSeq == p.FirstSeq && b.LastSeq == lastSeq {
			return ps, b, nil
		}
	}
	if want := seqAdd(ps.LastSeq, 1); p.FirstSeq != want {
		return ps, nil, fmt.Errorf("%w: partition %d: got sequence %d, expected %d", ErrOutOfOrderSequence, part, p.FirstSeq, want)
	}
	ps.LastSeq = lastSeq
	return ps, nil, nil
}

// seqAdd adds to a sequence number, wrapping at MaxInt32 as Kafka does.
func seqAdd(seq int32, n int64) int32 {
	return int32((int64(seq) + n) % (math.MaxInt32 + 1))
}

// IsRetryable reports whether an error from the Store is worth retrying.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || retryable(err)
}
