package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Layout of the fixed RecordBatch v2 header (big endian), as in Kafka's
// DefaultRecordBatch. The CRC-32C covers everything from attributes on, so
// the base offset (stored as 0) can be assigned on read without rewriting it.
const (
	batchLengthOffset = 8
	batchMagicOffset  = 16
	batchCRCOffset    = 17
	batchAttrOffset   = 21
	// BatchHeaderSize is the size of a batch with no records.
	BatchHeaderSize = 61
	// batchLengthBase is what the length field counts for an empty batch
	// (everything after the length field itself).
	batchLengthBase = BatchHeaderSize - 12
	batchMagic      = 2

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20

	// minRecordSize is the smallest possible encoded record (length,
	// attributes, timestamp delta, offset delta, key, value, header count:
	// one byte each); it bounds the record count a batch can claim.
	minRecordSize = 7
	// noTimestamp is Kafka's RecordBatch.NO_TIMESTAMP.
	noTimestamp = -1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Producer identifies an idempotent producer's batch (Kafka KIP-98).
type Producer struct {
	ID           int64
	Epoch        int16
	BaseSequence int32
}

// BatchOptions controls how a batch is encoded.
type BatchOptions struct {
	Compression Compression
	// LogAppendTime marks the batch's timestamps as broker-assigned; the
	// caller sets every record's Timestamp to the append time.
	LogAppendTime bool
	// Producer is nil for a non-idempotent batch (producer id -1).
	Producer *Producer
}

// BatchStats summarizes an encoded batch for the segment footer and index.
type BatchStats struct {
	Records      int
	Span         int64 // offsets the batch covers: LastOffsetDelta + 1
	MinTimestamp int64 // -1 for an empty batch
	MaxTimestamp int64 // -1 for an empty batch
}

// AppendBatch appends one batch holding recs at offset deltas 0..len(recs)-1.
// The Offset fields of recs are ignored.
func (c *Codec) AppendBatch(dst []byte, recs []Record, opt BatchOptions) ([]byte, BatchStats, error) {
	if len(recs) == 0 {
		return dst, BatchStats{}, errors.New("segments: a batch needs at least one record")
	}
	return c.appendBatch(dst, 0, int64(len(recs)-1), recs, opt, true)
}

// AppendSparseBatch appends one batch that covers offsets [base, last] but
// holds only recs, whose Offset fields must be strictly increasing within
// that range. Key compaction uses it: offsets are preserved and gaps are
// expected, as in Kafka. recs may be empty, so a range stays tiled.
func (c *Codec) AppendSparseBatch(dst []byte, base, last int64, recs []Record, opt BatchOptions) ([]byte, BatchStats, error) {
	if last < base-1 || last-base >= math.MaxInt32 {
		return dst, BatchStats{}, fmt.Errorf("segments: invalid batch range [%d, %d]", base, last)
	}
	prev := base - 1
	for i := range recs {
		o := recs[i].Offset
		if o <= prev || o > last {
			return dst, BatchStats{}, fmt.Errorf("segments: record offset %d outside (%d, %d] or out of order", o, prev, last)
		}
		prev = o
	}
	return c.appendBatch(dst, base, last, recs, opt, false)
}

func (c *Codec) appendBatch(dst []byte, base, last int64, recs []Record, opt BatchOptions, dense bool) ([]byte, BatchStats, error) {
	if len(recs) > math.MaxInt32 {
		return dst, BatchStats{}, errors.New("segments: too many records for one batch")
	}
	stats := BatchStats{Records: len(recs), Span: last - base + 1, MinTimestamp: noTimestamp, MaxTimestamp: noTimestamp}
	first := int64(noTimestamp)
	if len(recs) > 0 {
		first = recs[0].Timestamp
		stats.MinTimestamp, stats.MaxTimestamp = first, first
	}
	for i := range recs {
		stats.MinTimestamp = min(stats.MinTimestamp, recs[i].Timestamp)
		stats.MaxTimestamp = max(stats.MaxTimestamp, recs[i].Timestamp)
	}

	// Reserve the header, write the records section after it (directly when
	// uncompressed, via a pooled scratch buffer otherwise), then fill the
	// header in place: one copy of the payload at most.
	start := len(dst)
	dst = append(dst, make([]byte, BatchHeaderSize)...)
	if opt.Compression == CompressionNone {
		dst = appendRecords(dst, base, first, recs, dense)
	} else {
		scratch, _ := c.scratch.Get().(*[]byte)
		if scratch == nil {
			scratch = new([]byte)
		}
		raw := appendRecords((*scratch)[:0], base, first, recs, dense)
		var err error
		dst, err = c.compress(dst, opt.Compression, raw)
		*scratch = raw
		c.scratch.Put(scratch)
		if err != nil {
			return dst[:start], BatchStats{}, err
		}
	}
	if len(dst)-start-12 > math.MaxInt32 {
		return dst[:start], BatchStats{}, errors.New("segments: batch too large")
	}
	attrs := int16(opt.Compression) & attrCompressionMask
	if opt.LogAppendTime {
		attrs |= attrLogAppendTime
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0, // assigned on read; see package doc
		Length:               int32(len(dst) - start - 12),
		PartitionLeaderEpoch: -1,
		Magic:                batchMagic,
		Attributes:           attrs,
		LastOffsetDelta:      int32(last - base),
		FirstTimestamp:       first,
		MaxTimestamp:         stats.MaxTimestamp,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
	}
	if p := opt.Producer; p != nil {
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = p.ID, p.Epoch, p.BaseSequence
	}
	var hdr [BatchHeaderSize]byte
	rb.AppendTo(hdr[:0])
	copy(dst[start:], hdr[:])
	crc := crc32.Checksum(dst[start+batchAttrOffset:], castagnoli)
	binary.BigEndian.PutUint32(dst[start+batchCRCOffset:], crc)
	return dst, stats, nil
}

// appendRecords appends the records section of a batch: each record as a
// varint length and the record body kmsg encodes.
func appendRecords(dst []byte, base, first int64, recs []Record, dense bool) []byte {
	var kr kmsg.Record
	var body []byte
	for i := range recs {
		r := &recs[i]
		delta := int64(i)
		if !dense {
			delta = r.Offset - base
		}
		kr = kmsg.Record{TimestampDelta64: r.Timestamp - first, OffsetDelta: int32(delta), Key: r.Key, Value: r.Value, Headers: kr.Headers[:0]}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		// kmsg writes the length prefix first; encode with length 0 (one
		// byte) and replace it with the real body length.
		body = kr.AppendTo(body[:0])
		dst = binary.AppendVarint(dst, int64(len(body)-1))
		dst = append(dst, body[1:]...)
	}
	return dst
}

// EstimateBatchSize is a generous estimate of the encoded, uncompressed size
// of a batch of recs, for sizing buffers up front.
func EstimateBatchSize(recs []Record) int {
	n := BatchHeaderSize
	for i := range recs {
		n += recs[i].Size() + 8
	}
	return n
}

// BatchHeader is the fixed part of a stored batch.
type BatchHeader struct {
	Length          int32 // bytes after the length field
	LeaderEpoch     int32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

func (h *BatchHeader) Compression() Compression {
	return Compression(h.Attributes & attrCompressionMask)
}
func (h *BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }
func (h *BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }
func (h *BatchHeader) Control() bool       { return h.Attributes&attrControl != 0 }

// Size is the batch's total encoded size.
func (h *BatchHeader) Size() int { return 12 + int(h.Length) }

// Span is the number of offsets the batch covers.
func (h *BatchHeader) Span() int64 { return int64(h.LastOffsetDelta) + 1 }

// RawBatch is one validated batch inside a partition slice.
type RawBatch struct {
	Header     BatchHeader
	BaseOffset int64  // assigned from the slice's base offset
	Bytes      []byte // the whole stored batch, aliasing the input
	At         int64  // position of the batch in the walked buffer
}

// ReadBatchHeader validates the batch at the start of b (length, magic,
// CRC-32C, compression codec, counts) and returns its header.
func ReadBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, formatErr(ErrTruncated, int64(len(b)), "record batch header needs %d bytes, have %d", BatchHeaderSize, len(b))
	}
	length := int32(binary.BigEndian.Uint32(b[batchLengthOffset:]))
	if length < batchLengthBase {
		return BatchHeader{}, formatErr(ErrMalformed, batchLengthOffset, "record batch length %d below the minimum %d", length, batchLengthBase)
	}
	if magic := int8(b[batchMagicOffset]); magic != batchMagic {
		return BatchHeader{}, formatErr(ErrBadMagic, batchMagicOffset, "record batch magic %d, want %d", magic, batchMagic)
	}
	total := 12 + int64(length)
	if total > int64(len(b)) {
		return BatchHeader{}, formatErr(ErrTruncated, int64(len(b)), "record batch of %d bytes, have %d", total, len(b))
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b[:total]); err != nil {
		return BatchHeader{}, formatErr(ErrMalformed, 0, "record batch: %v", err)
	}
	if got := crc32.Checksum(b[batchAttrOffset:total], castagnoli); got != uint32(rb.CRC) {
		return BatchHeader{}, formatErr(ErrChecksum, batchCRCOffset, "record batch CRC-32C is %08x, computed %08x", uint32(rb.CRC), got)
	}
	h := BatchHeader{
		Length: rb.Length, LeaderEpoch: rb.PartitionLeaderEpoch, Attributes: rb.Attributes,
		LastOffsetDelta: rb.LastOffsetDelta, FirstTimestamp: rb.FirstTimestamp, MaxTimestamp: rb.MaxTimestamp,
		ProducerID: rb.ProducerID, ProducerEpoch: rb.ProducerEpoch, BaseSequence: rb.FirstSequence,
		NumRecords: rb.NumRecords,
	}
	if c := h.Compression(); c > CompressionZstd {
		return BatchHeader{}, formatErr(ErrMalformed, batchAttrOffset, "unknown compression codec %d", int8(c))
	}
	if h.LastOffsetDelta < -1 {
		return BatchHeader{}, formatErr(ErrMalformed, batchAttrOffset+2, "negative last offset delta %d", h.LastOffsetDelta)
	}
	if h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return BatchHeader{}, formatErr(ErrMalformed, BatchHeaderSize-4, "record count %d does not fit last offset delta %d", h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// WalkBatches validates each batch of a partition slice in turn and calls
// fn with it. Base offsets are assigned by tiling: the first batch starts at
// base and each next batch starts right after the previous one's last
// offset delta. fn may stop the walk by returning an error, which is
// returned as is.
func WalkBatches(data []byte, base int64, fn func(RawBatch) error) error {
	var at int64
	for len(data) > 0 {
		h, err := ReadBatchHeader(data)
		if err != nil {
			return shift(err, at)
		}
		n := h.Size()
		if err := fn(RawBatch{Header: h, BaseOffset: base, Bytes: data[:n], At: at}); err != nil {
			return err
		}
		base += h.Span()
		at += int64(n)
		data = data[n:]
	}
	return nil
}

// Records decodes the records of b, appending them to dst with absolute
// offsets and timestamps. Keys, values and header values alias either b's
// bytes or a fresh decompression buffer; callers must not modify them.
func (c *Codec) Records(b RawBatch, dst []Record) ([]Record, error) {
	h := &b.Header
	section := b.Bytes[BatchHeaderSize:]
	recs, err := c.decompress(h.Compression(), section)
	if err != nil {
		kind := ErrMalformed
		if errors.Is(err, ErrTooLarge) {
			kind = ErrTooLarge
		}
		return dst, formatErr(kind, b.At+BatchHeaderSize, "%v records: %v", h.Compression(), err)
	}
	if int64(h.NumRecords)*minRecordSize > int64(len(recs)) {
		return dst, formatErr(ErrMalformed, b.At+BatchHeaderSize, "batch claims %d records in %d bytes", h.NumRecords, len(recs))
	}
	// Positions inside a compressed section are reported at the section start.
	compressed := h.Compression() != CompressionNone
	pos := func(p int) int64 {
		if compressed {
			return b.At + BatchHeaderSize
		}
		return b.At + BatchHeaderSize + int64(p)
	}
	var kr kmsg.Record
	prevDelta := int32(-1)
	p := 0
	for i := int32(0); i < h.NumRecords; i++ {
		l, n := binary.Varint(recs[p:])
		if n <= 0 || l < 0 {
			return dst, formatErr(ErrMalformed, pos(p), "record %d has a bad length prefix", i)
		}
		if l > int64(len(recs)-p-n) {
			return dst, formatErr(ErrTruncated, pos(len(recs)), "record %d needs %d bytes, have %d", i, l, len(recs)-p-n)
		}
		// Re-read the whole record (length prefix included) through kmsg.
		if err := kr.ReadFrom(recs[p : p+n+int(l)]); err != nil {
			return dst, formatErr(ErrMalformed, pos(p), "record %d: %v", i, err)
		}
		if kr.OffsetDelta <= prevDelta || kr.OffsetDelta > h.LastOffsetDelta {
			return dst, formatErr(ErrMalformed, pos(p), "record %d offset delta %d outside (%d, %d]", i, kr.OffsetDelta, prevDelta, h.LastOffsetDelta)
		}
		prevDelta = kr.OffsetDelta
		ts := h.FirstTimestamp + kr.TimestampDelta64
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		r := Record{Offset: b.BaseOffset + int64(kr.OffsetDelta), Timestamp: ts, Key: kr.Key, Value: kr.Value}
		if len(kr.Headers) > 0 {
			r.Headers = make([]Header, len(kr.Headers))
			for j, kh := range kr.Headers {
				r.Headers[j] = Header{Key: kh.Key, Value: kh.Value}
			}
		}
		dst = append(dst, r)
		p += n + int(l)
	}
	if p != len(recs) {
		return dst, formatErr(ErrMalformed, pos(p), "%d trailing bytes after %d records", len(recs)-p, h.NumRecords)
	}
	return dst, nil
}

// DecodeSlice decodes every record of a partition slice whose first batch
// starts at offset base. Control batches (transaction markers) are skipped,
// as Kafka consumers skip them.
func (c *Codec) DecodeSlice(data []byte, base int64, dst []Record) ([]Record, error) {
	err := WalkBatches(data, base, func(b RawBatch) error {
		if b.Header.Control() {
			return nil
		}
		var err error
		dst, err = c.Records(b, dst)
		return err
	})
	return dst, err
}

// SliceStats summarizes a partition slice: how many offsets it spans, how
// many records it holds and its timestamp bounds.
type SliceStats struct {
	Span         int64
	Records      int64
	MinTimestamp int64
	MaxTimestamp int64
}

// ScanSlice validates a slice's batch headers and CRCs without decompressing
// records. MinTimestamp is approximated by the smallest batch first
// timestamp; use the stats AppendBatch returns where exact bounds matter.
func ScanSlice(data []byte) (SliceStats, error) {
	s := SliceStats{MinTimestamp: noTimestamp, MaxTimestamp: noTimestamp}
	err := WalkBatches(data, 0, func(b RawBatch) error {
		h := &b.Header
		s.Span += h.Span()
		s.Records += int64(h.NumRecords)
		if h.NumRecords > 0 {
			if s.MinTimestamp == noTimestamp || h.FirstTimestamp < s.MinTimestamp {
				s.MinTimestamp = h.FirstTimestamp
			}
			s.MaxTimestamp = max(s.MaxTimestamp, h.MaxTimestamp)
		}
		return nil
	})
	return s, err
}
