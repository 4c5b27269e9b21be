package segments

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// StreamWriter writes a segment object to an io.Writer as it goes, so an
// object of any size is written holding one batch at a time (the
// compactor's merges and rewrites). Its output is byte for byte what an
// ObjectWriter given the same slices produces.
type StreamWriter struct {
	w      io.Writer
	pos    int64
	slices []SliceInfo
	open   bool
	points pointsBuilder
	err    error
}

// NewStreamWriter writes the object header to w.
func NewStreamWriter(w io.Writer, opts ...WriterOption) *StreamWriter {
	s := &StreamWriter{w: w}
	s.points.interval = pointInterval(opts)
	s.write(appendHeader(nil))
	return s
}

func (s *StreamWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.w.Write(b)
	s.pos += int64(n)
	s.err = err
}

// Size is the number of bytes written so far.
func (s *StreamWriter) Size() int64 { return s.pos }

// BeginSlice starts a partition's slice at the current position.
func (s *StreamWriter) BeginSlice(topicID string, partition int32) error {
	if err := checkBegin(s.open, topicID); err != nil {
		return err
	}
	s.open = true
	s.points.reset(s.points.interval)
	s.slices = append(s.slices, SliceInfo{TopicID: topicID, Partition: partition, Offset: s.pos, BaseOffset: -1})
	return s.err
}

// WriteBatch appends one whole encoded batch to the open slice. The caller
// has validated it (a BatchReader has, or it was just encoded).
func (s *StreamWriter) WriteBatch(b []byte) error {
	if !s.open {
		return errors.New("segments: no open slice")
	}
	f, err := peekFrame(b)
	if err != nil {
		return err
	}
	if f.size != int64(len(b)) {
		return fmt.Errorf("segments: %d bytes hold a batch of %d", len(b), f.size)
	}
	s.points.add(f.size, f.span, f.maxTs)
	s.write(b)
	return s.err
}

// Batches is the span of the open slice so far, in offsets.
func (s *StreamWriter) Batches() (span, bytes int64) { return s.points.span, s.points.size }

// EndSlice closes the open slice; info supplies its base offset, counts
// and timestamps (the rest is set here).
func (s *StreamWriter) EndSlice(info SliceInfo) error {
	if !s.open {
		return errors.New("segments: no open slice")
	}
	cur := &s.slices[len(s.slices)-1]
	info.TopicID, info.Partition, info.Offset = cur.TopicID, cur.Partition, cur.Offset
	info.Length = s.pos - cur.Offset
	info.Points = s.points.result()
	*cur = info
	s.open = false
	return s.err
}

// Finish writes the footer and trailer and returns the slices.
func (s *StreamWriter) Finish() ([]SliceInfo, error) {
	if s.open {
		return nil, errors.New("segments: slice still open")
	}
	s.write(appendTail(nil, int(s.pos), s.slices))
	return s.slices, s.err
}

// Uploader is the part of a Bucket that stores a streamed object.
type Uploader interface {
	PutStream(ctx context.Context, key string, size int64, body io.Reader) error
}

// Upload stores under key the object that fill writes, streaming it to the
// bucket as it is written: memory holds one batch and the bucket's upload
// buffer, never the object. If fill fails, nothing is stored. It returns
// the object's slices and size.
func Upload(ctx context.Context, b Uploader, key string, fill func(*StreamWriter) error, opts ...WriterOption) ([]SliceInfo, int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		slices []SliceInfo
		size   int64
		err    error
	}
	done := make(chan result, 1)
	go func() {
		w := NewStreamWriter(pw, opts...)
		err := fill(w)
		var slices []SliceInfo
		if err == nil {
			slices, err = w.Finish()
		}
		// An error closes the body with it, which fails the upload.
		pw.CloseWithError(err)
		done <- result{slices, w.Size(), err}
	}()
	err := b.PutStream(ctx, key, -1, pr)
	pr.CloseWithError(errUploadEnded) // unblocks a writer the bucket stopped reading
	res := <-done
	if res.err != nil && !errors.Is(res.err, errUploadEnded) {
		return nil, 0, res.err
	}
	if err != nil {
		return nil, 0, err
	}
	if res.err != nil {
		return nil, 0, res.err
	}
	return res.slices, res.size, nil
}

var errUploadEnded = errors.New("segments: the upload ended")

// BatchReader reads the batches of a slice from a stream one at a time,
// validating each (length, magic, CRC-32C, counts) as ReadBatchHeader
// does. It holds one batch in memory, never more than its limit.
type BatchReader struct {
	r     io.Reader
	buf   []byte
	limit int
	at    int64
	base  int64
}

// NewBatchReader reads batches from r, the first of which starts at
// offset base; limit bounds the size of one batch (0: DefaultMaxBatchBytes).
func NewBatchReader(r io.Reader, base int64, limit int) *BatchReader {
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	return &BatchReader{r: r, limit: limit, base: base}
}

// Next returns the next batch, whose Bytes stay valid until the following
// call. At a clean end it returns io.EOF; a stream that ends inside a batch
// is ErrTruncated, positioned relative to the first byte read.
func (br *BatchReader) Next() (RawBatch, error) {
	if cap(br.buf) < BatchHeaderSize {
		br.buf = make([]byte, BatchHeaderSize, 64<<10)
	}
	hdr := br.buf[:BatchHeaderSize]
	n, err := io.ReadFull(br.r, hdr)
	switch {
	case err == io.EOF:
		return RawBatch{}, io.EOF
	case err == io.ErrUnexpectedEOF:
		return RawBatch{}, formatErr(ErrTruncated, br.at+int64(n), "record batch header needs %d bytes, have %d", BatchHeaderSize, n)
	case err != nil:
		return RawBatch{}, err
	}
	length := int64(int32(binary.BigEndian.Uint32(hdr[batchLengthOffset:])))
	if length < batchLengthBase {
		return RawBatch{}, formatErr(ErrMalformed, br.at+batchLengthOffset, "record batch length %d below the minimum %d", length, batchLengthBase)
	}
	total := 12 + length
	if total > int64(br.limit) {
		return RawBatch{}, formatErr(ErrTooLarge, br.at+batchLengthOffset, "record batch of %d bytes, limit %d", total, br.limit)
	}
	if int64(cap(br.buf)) < total {
		grown := make([]byte, total)
		copy(grown, hdr)
		br.buf = grown
	}
	b := br.buf[:total]
	if n, err := io.ReadFull(br.r, b[BatchHeaderSize:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return RawBatch{}, formatErr(ErrTruncated, br.at+BatchHeaderSize+int64(n), "record batch of %d bytes, have %d", total, BatchHeaderSize+n)
		}
		return RawBatch{}, err
	}
	h, err := ReadBatchHeader(b)
	if err != nil {
		return RawBatch{}, shift(err, br.at)
	}
	rb := RawBatch{Header: h, BaseOffset: br.base, Bytes: b, At: br.at}
	br.at += total
	br.base += h.Span()
	return rb, nil
}

// Position is how many bytes the reader has consumed, and the offset the
// next batch starts at.
func (br *BatchReader) Position() (bytes, offset int64) { return br.at, br.base }
