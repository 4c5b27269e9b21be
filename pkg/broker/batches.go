package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Produce and fetch of encoded record batches: what a Kafka front end
// needs. A client's batches are validated as Kafka's broker validates them
// and then stored as they are (their compression kept), through the same
// commit path (and group commit) as any produce; reads return stored
// batches as they are, base offsets patched.

// Errors of client batches.
var (
	// ErrCorruptBatch: a batch's framing or CRC is wrong.
	ErrCorruptBatch = errors.New("corrupt record batch")
	// ErrInvalidRecord: a batch is well formed but its records are not
	// acceptable (offset deltas, counts, control or transactional batches).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrInvalidTimestamp: a record's timestamp is too far ahead.
	ErrInvalidTimestamp = errors.New("invalid timestamp")
	// ErrUnsupportedFormat: not a RecordBatch v2 (magic 2).
	ErrUnsupportedFormat = errors.New("unsupported record format")
)

// BatchProduce is a client's encoded batches for one partition: one or
// more RecordBatch v2, appended all or nothing.
type BatchProduce struct {
	Partition int32
	Batches   []byte
}

// BatchResult is the outcome of a BatchProduce.
type BatchResult struct {
	Partition int32
	Base      int64 // the first record's offset (original offsets for a duplicate)
	Duplicate bool
	LogStart  int64
	// AppendTime is the broker's timestamp for log_append topics, else -1.
	AppendTime int64
	Err        error
}

// ProduceBatches validates and appends encoded batches to partitions of
// one topic. Errors are per partition; the returned error is for the
// request as a whole (an unknown topic, storage failing before commit).
func (b *Broker) ProduceBatches(ctx context.Context, topic string, parts []BatchProduce) ([]BatchResult, error) {
	t, err := b.Topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make([]BatchResult, len(parts))
	var batches []partBatch
	var at []int
	now := b.now()
	for i, pp := range parts {
		out[i] = BatchResult{Partition: pp.Partition, AppendTime: -1}
		if pp.Partition < 0 || pp.Partition >= t.Partitions {
			out[i].Err = fmt.Errorf("%w: %s has partitions 0..%d, not %d", offsets.ErrUnknownPartition, t.Name, t.Partitions-1, pp.Partition)
			continue
		}
		pb, appendTime, err := b.checkBatches(&t, pp, now)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].AppendTime = appendTime
		batches = append(batches, pb)
		at = append(at, i)
	}
	if len(batches) == 0 {
		return out, nil
	}
	res, err := b.appendObject(ctx, t, batches)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		r := res[j]
		out[i].Base, out[i].Duplicate, out[i].Err = r.Base, r.Duplicate, r.Err
		if r.Err == nil {
			out[i].LogStart = -1 // unknown here; Kafka allows -1
		}
	}
	return out, nil
}

// checkBatches validates a partition's batches as Kafka's broker does
// (magic, CRC, codec, dense offset deltas matching the record count, one
// producer with contiguous sequences, timestamps, batch size), decoding
// every record, and prepares them for storage: base offsets and leader
// epochs zeroed (neither is covered by the CRC), timestamps set by the
// broker for log_append topics.
func (b *Broker) checkBatches(t *offsets.Topic, pp BatchProduce, now time.Time) (partBatch, int64, error) {
	data := pp.Batches
	pb := partBatch{partition: pp.Partition, expectedOffset: -1, raw: data, rawStats: segments.BatchStats{MinTimestamp: -1, MaxTimestamp: -1}}
	appendTime := int64(-1)
	if len(data) == 0 {
		return pb, -1, fmt.Errorf("%w: no record batches", ErrCorruptBatch)
	}
	var recs []segments.Record
	var producer *offsets.ProducerID
	nextSeq := int32(-1)
	err := segments.WalkBatches(data, 0, func(rb segments.RawBatch) error {
		h := &rb.Header
		if int64(len(rb.Bytes)) > t.Config.MaxRecordBytes {
			return fmt.Errorf("%w: a batch of %d bytes; topic %s allows %d (max.message.bytes)", ErrRecordTooLarge, len(rb.Bytes), t.Name, t.Config.MaxRecordBytes)
		}
		if h.Transactional() || h.Control() {
			return fmt.Errorf("%w: transactional and control batches are not supported", ErrInvalidRecord)
		}
		if int64(h.NumRecords) != h.Span() || h.NumRecords == 0 {
			return fmt.Errorf("%w: %d records over %d offsets (offset deltas must be 0..n-1)", ErrInvalidRecord, h.NumRecords, h.Span())
		}
		var err error
		if recs, err = b.codec.Records(rb, recs[:0]); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptBatch, err)
		}
		for i := range recs {
			r := &recs[i]
			if r.Offset != rb.BaseOffset+int64(i) {
				return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, r.Offset-rb.BaseOffset)
			}
			if t.Config.TimestampType != "log_append" && r.Timestamp > now.Add(b.limits.MaxFutureTimestamp).UnixMilli() {
				return fmt.Errorf("%w: %d is more than %s ahead of the broker's clock", ErrInvalidTimestamp, r.Timestamp, b.limits.MaxFutureTimestamp)
			}
			if len(r.Headers) > b.limits.MaxHeadersPerRecord {
				return fmt.Errorf("%w: %d headers, the limit is %d", ErrInvalidRecord, len(r.Headers), b.limits.MaxHeadersPerRecord)
			}
			st := &pb.rawStats
			if st.MinTimestamp < 0 || r.Timestamp < st.MinTimestamp {
				st.MinTimestamp = r.Timestamp
			}
			st.MaxTimestamp = max(st.MaxTimestamp, r.Timestamp)
		}
		if h.ProducerID >= 0 {
			if producer == nil && rb.At == 0 {
				producer = &offsets.ProducerID{ID: h.ProducerID, Epoch: h.ProducerEpoch, FirstSeq: h.BaseSequence}
			} else if producer == nil || producer.ID != h.ProducerID || producer.Epoch != h.ProducerEpoch || h.BaseSequence != nextSeq {
				return fmt.Errorf("%w: batches of one partition in one request must come from one producer, in sequence", ErrInvalidRecord)
			}
			nextSeq = int32((int64(h.BaseSequence) + int64(h.NumRecords)) % (math.MaxInt32 + 1))
		} else if producer != nil {
			return fmt.Errorf("%w: batches of one partition in one request must come from one producer", ErrInvalidRecord)
		}
		pb.rawStats.Records += int(h.NumRecords)
		pb.rawStats.Span += h.Span()
		return nil
	})
	if err != nil {
		var fe *segments.FormatError
		if errors.As(err, &fe) {
			if errors.Is(err, segments.ErrBadMagic) {
				return pb, -1, fmt.Errorf("%w: %v", ErrUnsupportedFormat, err)
			}
			return pb, -1, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
		}
		return pb, -1, err
	}
	// The stored copy: base offsets and leader epochs zeroed, and for
	// log_append topics the broker's time (which the CRC covers).
	raw := append([]byte(nil), data...)
	logAppend := t.Config.TimestampType == "log_append"
	if logAppend {
		appendTime = now.UnixMilli()
		pb.rawStats.MinTimestamp, pb.rawStats.MaxTimestamp = appendTime, appendTime
	}
	for at := 0; at < len(raw); {
		n := 12 + int(binary.BigEndian.Uint32(raw[at+8:]))
		batch := raw[at : at+n]
		binary.BigEndian.PutUint64(batch[0:], 0)
		binary.BigEndian.PutUint32(batch[12:], 0)
		if logAppend {
			attrs := binary.BigEndian.Uint16(batch[21:]) | 0x08
			binary.BigEndian.PutUint16(batch[21:], attrs)
			binary.BigEndian.PutUint64(batch[35:], uint64(appendTime))
			binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], castagnoli))
		}
		at += n
	}
	pb.raw = raw
	pb.producer = producer
	return pb, appendTime, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchFetch asks for stored batches of one partition from an offset.
type BatchFetch struct {
	Topic     string
	Partition int32
	Offset    int64
	// MaxBytes bounds this partition's batches (at least one whole batch
	// is returned if any is there, as Kafka does).
	MaxBytes int
}

// BatchFetchResult is what a BatchFetch read: Records holds whole batches
// back to back, base offsets set (the first may start below Offset, as
// Kafka's do).
type BatchFetchResult struct {
	Records       []byte
	HighWatermark int64
	LogStart      int64
	Err           error
}

// FetchBatches reads several partitions' batches with one byte budget
// (maxBytes over all, each partition at most its own MaxBytes), in
// request order. If fewer than minBytes are there (and nothing failed), it
// waits up to wait for more, as Kafka's Fetch does. An offset outside the
// log is an *OffsetOutOfRangeError, only after a strongly consistent read
// of the partition's bounds.
func (b *Broker) FetchBatches(ctx context.Context, reqs []BatchFetch, maxBytes, minBytes int, wait time.Duration) []BatchFetchResult {
	out := make([]BatchFetchResult, len(reqs))
	topics := make([]offsets.Topic, len(reqs))
	freqs := make([]FetchRequest, len(reqs))
	for i, r := range reqs {
		topics[i], out[i].Err = b.topicPartition(ctx, r.Topic, r.Partition)
		freqs[i] = FetchRequest{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	}
	deadline := b.waitDeadline(ctx, min(max(wait, 0), b.limits.MaxWait))
	wake := make(chan struct{}, 1)
	if wait > 0 {
		var watched []watchReq
		for i, r := range reqs {
			if topics[i].ID != "" {
				watched = append(watched, watchReq{topic: topics[i], p: r.Partition, known: r.Offset})
			}
		}
		unwatch := b.watch.add(wake, watched)
		defer unwatch()
	}
	for {
		heads, err := b.headsOf(ctx, freqs, topics)
		total, failed := 0, false
		for i, r := range reqs {
			if topics[i].ID == "" {
				failed = true
				continue
			}
			if err != nil {
				out[i] = BatchFetchResult{Err: err}
				failed = true
				continue
			}
			budget := min(r.MaxBytes, maxBytes-total)
			if total > 0 && budget <= 0 {
				out[i] = BatchFetchResult{HighWatermark: heads[i].LogEnd, LogStart: heads[i].LogStart}
				continue
			}
			res := b.readBatches(ctx, topics[i], r.Partition, heads[i], r.Offset, max(budget, 1))
			out[i] = res
			failed = failed || res.Err != nil
			total += len(res.Records)
			if wait > 0 {
				b.watch.known(wake, topics[i].ID, r.Partition, res.HighWatermark)
			}
		}
		if failed || total >= max(minBytes, 1) || time.Until(deadline) <= 0 || ctx.Err() != nil {
			return out
		}
		if !b.waitWake(ctx, wake, deadline) {
			return out
		}
	}
}

// readBatches reads one partition's batches from off, up to budget bytes
// (at least one whole batch).
func (b *Broker) readBatches(ctx context.Context, t offsets.Topic, p int32, st offsets.PartitionState, off int64, budget int) BatchFetchResult {
	res := BatchFetchResult{HighWatermark: st.LogEnd, LogStart: st.LogStart}
	if st.Deleted {
		b.forgetTopic(t.Name)
		res.Err = fmt.Errorf("%w: %s", offsets.ErrUnknownTopic, t.Name)
		return res
	}
	if off < st.LogStart || off > st.LogEnd {
		// Decide only on a strongly consistent read of both bounds.
		fresh, err := b.store.Partitions(ctx, t, p)
		if err != nil {
			res.Err = err
			return res
		}
		st = fresh[0]
		b.logStarts.put(partKey(t.ID, p), st.LogStart, time.Now())
		res.HighWatermark, res.LogStart = st.LogEnd, st.LogStart
		if off < st.LogStart || off > st.LogEnd {
			res.Err = &OffsetOutOfRangeError{Offset: off, LogStart: st.LogStart, LogEnd: st.LogEnd}
			return res
		}
	}
	next := off
	tail := b.trustedTail(st)
	for next < st.LogEnd && len(res.Records) < budget {
		entries, err := b.entries(ctx, t.ID, p, next, tail)
		if err != nil {
			res.Err = err
			return res
		}
		if len(entries) == 0 || entries[0].Base > next {
			if len(res.Records) > 0 {
				return res
			}
			fresh, err := b.store.Partitions(ctx, t, p)
			if err == nil && next < fresh[0].LogStart {
				b.logStarts.put(partKey(t.ID, p), fresh[0].LogStart, time.Now())
				res.LogStart = fresh[0].LogStart
				res.Err = &OffsetOutOfRangeError{Offset: off, LogStart: fresh[0].LogStart, LogEnd: fresh[0].LogEnd}
				return res
			}
			res.Err = fmt.Errorf("%w: no index entry holds offset %d of %s/%d (log end %d)", offsets.ErrUnavailable, next, t.Name, p, st.LogEnd)
			return res
		}
		for _, e := range entries {
			full := false
			err := b.readEntry(ctx, entryRead{
				e: e, from: next, point: -1,
				need: func() int64 { return int64(budget - len(res.Records)) },
				raw: func(base int64, raw []byte) bool {
					if base+batchSpan(raw) <= next {
						return true // wholly before the offset
					}
					if len(res.Records) > 0 && len(res.Records)+len(raw) > budget {
						full = true
						return false
					}
					at := len(res.Records)
					res.Records = append(res.Records, raw...)
					binary.BigEndian.PutUint64(res.Records[at:], uint64(base))
					binary.BigEndian.PutUint32(res.Records[at+12:], 0) // leader epoch
					next = base + batchSpan(raw)
					full = len(res.Records) >= budget
					return !full
				},
			})
			if err != nil {
				if len(res.Records) == 0 {
					res.Err = err
				}
				return res
			}
			if full {
				return res
			}
			next = max(next, e.Last+1)
			if next >= st.LogEnd {
				return res
			}
		}
	}
	return res
}

// batchSpan is the offsets a stored batch covers.
func batchSpan(raw []byte) int64 { return int64(int32(binary.BigEndian.Uint32(raw[23:]))) + 1 }

// DeleteRecords moves a partition's log start to before (-1: its log end),
// as Kafka's DeleteRecords does, removing the index entries wholly below
// it. It returns the new log start.
func (b *Broker) DeleteRecords(ctx context.Context, topic string, p int32, before int64) (int64, error) {
	t, err := b.topicPartition(ctx, topic, p)
	if err != nil {
		return 0, err
	}
	owner := "delete-records-" + randomHex(6)
	var lease *offsets.Lease
	for attempt := 0; ; attempt++ {
		lease, err = b.store.AcquireLease(ctx, t.ID, p, owner, 30*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, offsets.ErrLeaseHeld) || attempt == 20 {
			return 0, err
		}
		// A compactor works on the partition; its steps are short.
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = b.store.ReleaseLease(rctx, lease)
	}()
	st, err := b.store.Partitions(ctx, t, p)
	if err != nil {
		return 0, err
	}
	if before < 0 {
		before = st[0].LogEnd
	}
	if before > st[0].LogEnd {
		return 0, &OffsetOutOfRangeError{Offset: before, LogStart: st[0].LogStart, LogEnd: st[0].LogEnd}
	}
	if before <= lease.LogStart() {
		return lease.LogStart(), nil
	}
	var drop []offsets.IndexEntry
	for from := lease.LogStart(); from < before; {
		page, more, err := b.store.Index(ctx, t.ID, p, from, 1000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.Last >= before {
				more = false
				break
			}
			drop = append(drop, e)
		}
		if !more || len(page) == 0 {
			break
		}
		from = page[len(page)-1].Last + 1
	}
	if err := b.store.TrimPrefix(ctx, lease, drop, before); err != nil {
		return 0, err
	}
	b.logStarts.put(partKey(t.ID, p), before, time.Now())
	return before, nil
}
