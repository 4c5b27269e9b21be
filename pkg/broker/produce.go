package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/streambed/streambed/pkg/kafkahash"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// NoTimestamp asks the broker to stamp a record with its clock.
const NoTimestamp = -1

// NoPartition lets the broker choose: by key (murmur2), else sticky.
const NoPartition = -1

// ErrObjectStore: the object store failed (after the adapter's retries).
// Nothing was committed; the request can be retried.
var ErrObjectStore = errors.New("object store unavailable")

// ErrNotCommitted marks a produce failure known to have changed nothing:
// the upload failed, or no commit write was ever sent. Whatever the cause
// (a timeout included), retrying cannot duplicate records.
var ErrNotCommitted = errors.New("nothing was committed")

// ProduceRecord is a record to append to a topic.
type ProduceRecord struct {
	segments.Record       // Timestamp NoTimestamp: stamp with the broker's clock
	Partition       int32 // NoPartition: choose
}

// ProduceOptions tune a topic-level produce.
type ProduceOptions struct {
	// IdempotencyKey makes retries of the same request (same key, same
	// records) return the original offsets instead of appending again; the
	// same key with other records is refused (ErrIdempotencyKeyReused).
	// Keys are scoped to Principal and the topic.
	IdempotencyKey string
	// Principal is the authenticated caller ("" without authentication).
	Principal string
	// Producer makes the request an idempotent producer's (KIP-98), as a
	// Kafka ProduceRequest: every record names its partition, and each
	// partition's batch starts at its base sequence.
	Producer *ProducerSession
}

// ProducerSession is an idempotent producer's id and epoch, with the first
// sequence number of this request's batch for each partition it touches.
type ProducerSession struct {
	ID            int64
	Epoch         int16
	BaseSequences map[int32]int32
}

// RecordResult is one record's outcome.
type RecordResult struct {
	Partition int32
	Offset    int64
	Timestamp int64
	Err       error
}

// Produce appends records to a topic as one object and one commit. Bad
// input fails the whole request before anything is written (a *FieldError
// naming the record and field). Failures at commit time are per partition
// and reported per record; the returned error is for the request as a
// whole.
//
// Records without a partition are partitioned here, by key with the
// topic's partition count. If the topic grew meanwhile the commit refuses
// them (never a key's records on its old partition after its new one), and
// they are partitioned again with the new count.
func (b *Broker) Produce(ctx context.Context, topic string, recs []ProduceRecord, opt ProduceOptions) ([]RecordResult, error) {
	t, err := b.Topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := b.checkBatch(len(recs), "records"); err != nil {
		return nil, err
	}
	if err := checkSession(opt, recs); err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Partition >= t.Partitions {
			if t, err = b.refreshTopic(ctx, topic); err != nil {
				return nil, err
			}
			break
		}
	}
	now := b.now()
	stamped := make([]segments.Record, len(recs))
	total := 0
	for i := range recs {
		r := recs[i]
		field := "records[" + strconv.Itoa(i) + "]"
		if err := b.checkRecord(&t, &r.Record, field, now); err != nil {
			return nil, err
		}
		if p := r.Partition; p != NoPartition && (p < 0 || p >= t.Partitions) {
			return nil, &FieldError{Field: field + ".partition", Reason: fmt.Sprintf("topic %s has partitions 0..%d, not %d", topic, t.Partitions-1, p), Err: offsets.ErrUnknownPartition}
		}
		total += r.Size()
		stamped[i] = r.Record
	}
	if total > b.limits.MaxRequestBytes {
		return nil, &FieldError{Field: "records", Reason: fmt.Sprintf("records total %d bytes, the limit is %d", total, b.limits.MaxRequestBytes), Err: ErrRecordTooLarge}
	}

	nParts := t.Partitions
	sticky := int32(mrand.N(int(nParts)))
	var idem *offsets.Idempotent
	var prior offsets.IdemRecord
	if opt.IdempotencyKey != "" {
		ref, err := b.store.IdempotencyRef(ctx, opt.Principal, t.ID, opt.IdempotencyKey)
		if err != nil {
			return nil, err
		}
		idem = &offsets.Idempotent{Ref: ref, Digest: requestDigest(recs), Partitions: nParts}
		var found bool
		if prior, found, err = b.store.LookupIdempotency(ctx, ref); err != nil {
			return nil, err
		}
		if found {
			if prior.Digest != idem.Digest {
				return nil, fmt.Errorf("%w: Idempotency-Key %q was first used with other records; use a new key for a new request", offsets.ErrIdempotencyKeyReused, opt.IdempotencyKey)
			}
			// Partition as the first attempt did, even if the topic grew since.
			idem.Partitions = min(prior.Partitions, t.Partitions)
			nParts = idem.Partitions
		}
		// Deterministic, so a retry puts unkeyed records where they went before.
		sticky = int32(ref.Hash() % uint64(nParts))
	}

	if idem != nil {
		pl := partitionRecords(recs, allIndexes(len(recs)), nParts, sticky, 0)
		res, err := b.appendIdempotent(ctx, t, pl.batches(stamped, nil), idem, prior)
		if err != nil {
			return nil, err
		}
		return pl.results(make([]RecordResult, len(recs)), stamped, res), nil
	}
	if opt.Producer != nil {
		pl := partitionRecords(recs, allIndexes(len(recs)), nParts, sticky, 0)
		keys, firsts := make([]seqKey, len(pl.parts)), make([]int32, len(pl.parts))
		for i, p := range pl.parts {
			keys[i], firsts[i] = seqKey{t.ID, p, opt.Producer.ID, opt.Producer.Epoch}, opt.Producer.BaseSequences[p]
		}
		done := b.seqs.enter(ctx, keys, firsts)
		var committed []int32
		defer func() { done(committed) }()
		res, err := b.appendObject(ctx, t, pl.batches(stamped, opt.Producer))
		if err != nil {
			return nil, err
		}
		committed = make([]int32, len(pl.parts))
		for i, p := range pl.parts {
			committed[i] = -1
			if res[i].Err == nil {
				committed[i] = int32((int64(firsts[i]) + int64(len(pl.byPart[p]))) % (1 << 31))
			}
		}
		return pl.results(make([]RecordResult, len(recs)), stamped, res), nil
	}

	// Plain records: partition, commit, and partition again whatever a
	// partition increase refused.
	out := make([]RecordResult, len(recs))
	todo := allIndexes(len(recs))
	for attempt := 0; ; attempt++ {
		pl := partitionRecords(recs, todo, nParts, sticky, nParts)
		res, err := b.appendObject(ctx, t, pl.batches(stamped, nil))
		if err != nil {
			if attempt > 0 {
				// Part of the request is committed already: report per record.
				for _, i := range todo {
					out[i] = RecordResult{Partition: NoPartition, Timestamp: stamped[i].Timestamp, Err: err}
				}
				return out, nil
			}
			return nil, err
		}
		pl.results(out, stamped, res)
		todo = todo[:0]
		for i, r := range res {
			if errors.Is(r.Err, offsets.ErrStalePartitionCount) {
				todo = append(todo, pl.byPart[pl.parts[i]]...)
			}
		}
		if len(todo) == 0 || attempt == 2 {
			return out, nil
		}
		slices.Sort(todo)
		if t, err = b.refreshTopic(ctx, topic); err != nil {
			return out, nil // the refused records keep their error
		}
		nParts = t.Partitions
		sticky = int32(mrand.N(int(nParts)))
	}
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// placement is records (by index) grouped into one batch per partition.
type placement struct {
	parts  []int32         // ascending
	byPart map[int32][]int // record indexes, in request order
	// keyed marks partitions holding records partitioned by key (their
	// commit checks the partition count they were partitioned with).
	keyed map[int32]bool
	count int32
}

// partitionRecords places the records at idx: explicit partitions as
// given, keyed records by Kafka's partitioner over n partitions, the rest
// on sticky. check > 0 makes keyed batches conditional on the topic still
// having that many partitions.
func partitionRecords(recs []ProduceRecord, idx []int, n, sticky, check int32) placement {
	pl := placement{byPart: map[int32][]int{}, keyed: map[int32]bool{}, count: check}
	for _, i := range idx {
		r := recs[i]
		p := r.Partition
		switch {
		case p == NoPartition && r.Key != nil:
			p = kafkahash.Partition(r.Key, n)
			pl.keyed[p] = true
		case p == NoPartition:
			p = sticky
		}
		pl.byPart[p] = append(pl.byPart[p], i)
	}
	for p := range pl.byPart {
		pl.parts = append(pl.parts, p)
	}
	slices.Sort(pl.parts)
	return pl
}

func (pl placement) batches(stamped []segments.Record, session *ProducerSession) []partBatch {
	out := make([]partBatch, len(pl.parts))
	for i, p := range pl.parts {
		batch := make([]segments.Record, len(pl.byPart[p]))
		for j, ri := range pl.byPart[p] {
			batch[j] = stamped[ri]
		}
		out[i] = partBatch{partition: p, recs: batch, expectedOffset: -1}
		if pl.keyed[p] {
			out[i].partitions = pl.count
		}
		if session != nil {
			out[i].producer = &offsets.ProducerID{ID: session.ID, Epoch: session.Epoch, FirstSeq: session.BaseSequences[p]}
		}
	}
	return out
}

// results writes per-partition commit results into out, per record.
func (pl placement) results(out []RecordResult, stamped []segments.Record, res []offsets.AppendResult) []RecordResult {
	for i, p := range pl.parts {
		for j, ri := range pl.byPart[p] {
			r := res[i]
			out[ri] = RecordResult{Partition: p, Timestamp: stamped[ri].Timestamp, Err: r.Err}
			if r.Err == nil {
				out[ri].Offset = r.Base + int64(j)
			}
		}
	}
	return out
}

// appendIdempotent commits the batches of an Idempotency-Key request that
// an earlier attempt did not, answering the others with the offsets it
// got.
func (b *Broker) appendIdempotent(ctx context.Context, t offsets.Topic, batches []partBatch, idem *offsets.Idempotent, prior offsets.IdemRecord) ([]offsets.AppendResult, error) {
	res := make([]offsets.AppendResult, len(batches))
	var todo []partBatch
	var at []int
	for i, pb := range batches {
		if d, ok := priorDone(prior, pb.partition); ok {
			res[i] = offsets.AppendResult{Partition: pb.partition, Base: d.Base, Last: d.Last, LogEnd: d.Last + 1, Duplicate: true}
			continue
		}
		todo = append(todo, pb)
		at = append(at, i)
	}
	if len(todo) == 0 {
		return res, nil
	}
	got, err := b.appendObjectWith(ctx, t, todo, idem)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		res[i] = got[j]
	}
	return res, nil
}

func priorDone(r offsets.IdemRecord, p int32) (offsets.IdemPart, bool) {
	for _, d := range r.Done {
		if d.Partition == p {
			return d, true
		}
	}
	return offsets.IdemPart{}, false
}

// requestDigest identifies a request's content: its records as sent
// (before the broker stamps timestamps), in order.
func requestDigest(recs []ProduceRecord) string {
	h := sha256.New()
	var buf []byte
	bytesField := func(b []byte) {
		if b == nil {
			buf = binary.AppendVarint(buf, -1)
			return
		}
		buf = binary.AppendVarint(buf, int64(len(b)))
		buf = append(buf, b...)
	}
	for _, r := range recs {
		buf = buf[:0]
		buf = binary.AppendVarint(buf, int64(r.Partition))
		buf = binary.AppendVarint(buf, r.Timestamp)
		bytesField(r.Key)
		bytesField(r.Value)
		buf = binary.AppendVarint(buf, int64(len(r.Headers)))
		for _, hd := range r.Headers {
			bytesField([]byte(hd.Key))
			bytesField(hd.Value)
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkSession validates an idempotent topic-level produce: records must
// name their partitions, and base sequences must cover exactly those.
func checkSession(opt ProduceOptions, recs []ProduceRecord) error {
	ps := opt.Producer
	if ps == nil {
		return nil
	}
	if opt.IdempotencyKey != "" {
		return fieldErr("producer", "give a producer or an Idempotency-Key, not both")
	}
	if ps.ID < 0 || ps.Epoch < 0 {
		return fieldErr("producer", "id %d and epoch %d must not be negative", ps.ID, ps.Epoch)
	}
	used := map[int32]bool{}
	for i, r := range recs {
		if r.Partition == NoPartition {
			return fieldErr(fmt.Sprintf("records[%d].partition", i), "is required when producing as an idempotent producer")
		}
		used[r.Partition] = true
	}
	for p, seq := range ps.BaseSequences {
		if !used[p] {
			return fieldErr("base_sequences", "partition %d has a base sequence but no records", p)
		}
		if seq < 0 {
			return fieldErr("base_sequences", "partition %d: sequence %d is negative", p, seq)
		}
	}
	for p := range used {
		if _, ok := ps.BaseSequences[p]; !ok {
			return fieldErr("base_sequences", "partition %d has records but no base sequence", p)
		}
	}
	return nil
}

// PartitionProduce is an atomic append to one partition.
type PartitionProduce struct {
	Records        []segments.Record // Timestamp NoTimestamp: stamp with the broker's clock
	Producer       *offsets.ProducerID
	ExpectedOffset int64 // -1: none
	FenceToken     *string
}

// PartitionResult is the outcome of a partition-level produce.
type PartitionResult struct {
	Partition  int32
	Base, Last int64
	LogEnd     int64
	Duplicate  bool
	Timestamps []int64
}

// ProducePartition appends records to one partition as one batch: all or
// nothing, optionally as an idempotent producer, conditional on the log end
// offset and/or a fencing token.
func (b *Broker) ProducePartition(ctx context.Context, topic string, p int32, req PartitionProduce) (PartitionResult, error) {
	t, err := b.topicPartition(ctx, topic, p)
	if err != nil {
		return PartitionResult{}, err
	}
	if err := b.checkBatch(len(req.Records), "records"); err != nil {
		return PartitionResult{}, err
	}
	now := b.now()
	recs := slices.Clone(req.Records)
	total := 0
	for i := range recs {
		if err := b.checkRecord(&t, &recs[i], "records["+strconv.Itoa(i)+"]", now); err != nil {
			return PartitionResult{}, err
		}
		total += recs[i].Size()
	}
	if total > b.limits.MaxRequestBytes {
		return PartitionResult{}, &FieldError{Field: "records", Reason: fmt.Sprintf("records total %d bytes, the limit is %d", total, b.limits.MaxRequestBytes), Err: ErrRecordTooLarge}
	}
	if pr := req.Producer; pr != nil && (pr.ID < 0 || pr.Epoch < 0 || pr.FirstSeq < 0) {
		return PartitionResult{}, fieldErr("producer", "id, epoch and base_sequence must not be negative")
	}
	if req.ExpectedOffset < -1 {
		return PartitionResult{}, fieldErr("expected_offset", "must not be negative")
	}
	res, err := b.appendObject(ctx, t, []partBatch{{partition: p, recs: recs, producer: req.Producer, expectedOffset: req.ExpectedOffset, fence: req.FenceToken}})
	if err != nil {
		return PartitionResult{}, err
	}
	r := res[0]
	if r.Err != nil {
		return PartitionResult{}, r.Err
	}
	ts := make([]int64, len(recs))
	for i := range recs {
		ts[i] = recs[i].Timestamp
	}
	return PartitionResult{Partition: p, Base: r.Base, Last: r.Last, LogEnd: r.LogEnd, Duplicate: r.Duplicate, Timestamps: ts}, nil
}

func (b *Broker) checkBatch(n int, field string) error {
	switch {
	case n == 0:
		return fieldErr(field, "at least one record is required")
	case n > b.limits.MaxRecordsPerRequest:
		return &FieldError{Field: field, Reason: fmt.Sprintf("%d records, the limit is %d per request", n, b.limits.MaxRecordsPerRequest), Err: ErrTooManyRecords}
	}
	return nil
}

// checkRecord validates a record and stamps its timestamp.
func (b *Broker) checkRecord(t *offsets.Topic, r *segments.Record, field string, now time.Time) error {
	if size := r.Size(); int64(size) > t.Config.MaxRecordBytes {
		return &FieldError{Field: field, Reason: fmt.Sprintf("record is %d bytes, topic %s allows %d (max_record_bytes)", size, t.Name, t.Config.MaxRecordBytes), Err: ErrRecordTooLarge}
	}
	if len(r.Headers) > b.limits.MaxHeadersPerRecord {
		return fieldErr(field+".headers", "%d headers, the limit is %d", len(r.Headers), b.limits.MaxHeadersPerRecord)
	}
	for i, h := range r.Headers {
		if h.Key == "" || len(h.Key) > b.limits.MaxHeaderNameBytes {
			return fieldErr(fmt.Sprintf("%s.headers[%d].name", field, i), "header names must be 1-%d bytes", b.limits.MaxHeaderNameBytes)
		}
	}
	switch {
	case t.Config.TimestampType == "log_append" || r.Timestamp == NoTimestamp:
		r.Timestamp = now.UnixMilli()
	case r.Timestamp < 0:
		return fieldErr(field+".timestamp", "%d is negative; omit it to use the broker's clock", r.Timestamp)
	case r.Timestamp > now.Add(b.limits.MaxFutureTimestamp).UnixMilli():
		return fieldErr(field+".timestamp", "%d is more than %s ahead of the broker's clock", r.Timestamp, b.limits.MaxFutureTimestamp)
	}
	return nil
}

type partBatch struct {
	partition  int32
	partitions int32 // > 0: keyed records partitioned over this many
	recs       []segments.Record
	// raw, when set, is the batches already encoded (a Kafka client's),
	// stored as they are; rawStats describes them.
	raw            []byte
	rawStats       segments.BatchStats
	producer       *offsets.ProducerID
	expectedOffset int64
	fence          *string
}

// appendObject encodes one batch per partition into one object, uploads it
// create-only, and commits it. Results are in the order of batches.
func (b *Broker) appendObject(ctx context.Context, t offsets.Topic, batches []partBatch) ([]offsets.AppendResult, error) {
	return b.appendObjectWith(ctx, t, batches, nil)
}

func (b *Broker) appendObjectWith(ctx context.Context, t offsets.Topic, batches []partBatch, idem *offsets.Idempotent) ([]offsets.AppendResult, error) {
	encoded, size, err := b.encodeBatches(t, batches)
	if err != nil {
		return nil, err
	}
	req := &flushReq{t: t, batches: encoded, bytes: size, done: make(chan flushOut, 1)}
	if idem == nil && !b.flush.cfg.Off {
		b.flush.submit(req)
		QueuedCallback(ctx)()
		select {
		case out := <-req.done:
			return out.results, out.err
		case <-ctx.Done():
			if req.abandon() {
				return nil, fmt.Errorf("%w: %w", ErrNotCommitted, ctx.Err())
			}
			// Its flush is committing it: the outcome is unknown.
			return nil, ctx.Err()
		}
	}
	// A request of its own: an Idempotency-Key request (its commit also
	// records the key), or group commit turned off.
	fl, err := b.assemble(ctx, []*flushReq{req})
	if err != nil {
		return nil, err
	}
	results, errs, _, _ := b.commitFlush(ctx, fl, idem)
	return results[0], errs[0]
}

// remember puts a slice this broker just committed into its caches (its
// index entry and its batches), so consumers tailing the partition
// through this process read neither the store nor the bucket for it.
func (b *Broker) remember(topicID, key string, obj []byte, s segments.SliceInfo, a offsets.Append, r offsets.AppendResult) {
	e := offsets.IndexEntry{
		Base: r.Base, Last: r.Last, Records: s.Records, Object: key, Offset: s.Offset, Length: s.Length,
		MinTs: a.MinTs, MaxTs: a.MaxTs, Points: a.Points, CreatedMs: b.now().UnixMilli(),
	}
	b.index.extend(partKey(topicID, r.Partition), e, time.Now())
	data := obj[s.Offset : s.Offset+s.Length]
	_ = segments.WalkBatches(data, r.Base, func(rb segments.RawBatch) error {
		c := &cachedBatch{base: rb.BaseOffset, span: rb.Header.Span(), raw: bytes.Clone(rb.Bytes)}
		b.batches.add(batchKey(key, s.Offset+rb.At), c, c.size())
		return nil
	})
}

func (b *Broker) deleteUnreferenced(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.bucket.Delete(ctx, key); err != nil {
		b.log.Warn("deleting an unreferenced object; the orphan sweep will retry", "object", key, "err", err)
	}
}

// upload stores obj under a fresh create-only key. Keys start with a
// random two-hex-digit prefix so S3 spreads the load.
func (b *Broker) upload(ctx context.Context, obj []byte) (string, error) {
	for attempt := 0; ; attempt++ {
		var rnd [9]byte
		_, _ = rand.Read(rnd[:])
		key := fmt.Sprintf("l0/%02x/%d-%s", rnd[0], b.now().UnixMilli(), hex.EncodeToString(rnd[1:]))
		err := b.bucket.Put(ctx, key, obj)
		if err == nil {
			return key, nil
		}
		// ErrAlreadyExists on a random key is an S3-level retry of our own
		// successful put whose answer was lost: take a new key, the orphan
		// sweep removes the other.
		if errors.Is(err, segments.ErrAlreadyExists) && attempt < 2 {
			continue
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: upload: %w", ErrObjectStore, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// queuedKey carries a produce call's "records queued" callback.
type queuedKey struct{}

// WithQueued returns a context whose produce calls call fn once their
// records are queued for a group-commit flush: from then on, a later
// produce of the same partitions commits after them. A front end that
// pipelines one client's requests (the Kafka listener) starts the next
// request then, which keeps the client's order without waiting for the
// first request to be durable. Without group commit fn is not called.
func WithQueued(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, queuedKey{}, fn)
}

// QueuedCallback returns the callback WithQueued put in ctx (a no-op if
// none), for a front end that fans one request out into several produce
// calls and signals once all of them have queued.
func QueuedCallback(ctx context.Context) func() {
	if fn, ok := ctx.Value(queuedKey{}).(func()); ok {
		return fn
	}
	return func() {}
}
