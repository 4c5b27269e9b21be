package segments

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Segment object layout, version 2 (docs/format.md has the full table):
//
//	header   8 bytes   magic "SBSG", version uint16, flags uint16
//	slices             the batches of each partition, one contiguous run each
//	footer             uint32 count, then count entries (see SliceInfo)
//	trailer  24 bytes  footer offset uint64, footer length uint32,
//	                   footer CRC-32C uint32, version uint16, flags uint16, magic "SBSG"
//
// All integers are big endian. The trailer is fixed-size so a reader that
// only knows the object size can find the footer with one ranged read.
// Version 2 adds each slice's points (its sparse batch index) to the footer
// entry; version 1 objects are still read, as slices with one point.
const (
	ObjectVersion = 2
	HeaderSize    = 8
	TrailerSize   = 24
	// MaxTopicIDLen bounds topic ids in the footer.
	MaxTopicIDLen = 255
	// minEntrySize is a version 1 footer entry with an empty topic id; a
	// version 2 entry adds a uint32 point count and the points.
	minEntrySize = 2 + 4 + 8*8
)

// readsVersion reports whether this build reads objects of version v.
func readsVersion(v uint16) bool { return v == 1 || v == 2 }

var objectMagic = [4]byte{'S', 'B', 'S', 'G'}

// SliceInfo describes one partition's slice of a segment object; it is what
// the footer stores and what the metadata index points at.
type SliceInfo struct {
	TopicID   string
	Partition int32
	Offset    int64 // byte position of the slice in the object
	Length    int64 // byte length of the slice
	// BaseOffset is the slice's first offset when it was known at write
	// time (compacted segments), or -1 (L0 objects, whose offsets are
	// assigned at commit).
	BaseOffset int64
	Records    int64 // records held
	// FirstDelta and LastDelta are the first record's offset and the end
	// of the covered range, relative to the slice base. For L0 objects
	// they are 0 and Records-1; key compaction leaves gaps.
	FirstDelta   int64
	LastDelta    int64
	MinTimestamp int64
	MaxTimestamp int64
	// Points is the slice's sparse batch index (nil in version 1 objects;
	// StartPoints fills in the one they imply).
	Points []Point `json:",omitempty"`
}

// Span is the number of offsets the slice covers.
func (s *SliceInfo) Span() int64 { return s.LastDelta + 1 }

// ObjectWriter assembles a segment object in memory (the produce path,
// whose objects are small); StreamWriter writes large ones as it goes.
type ObjectWriter struct {
	buf      []byte
	slices   []SliceInfo
	open     bool
	interval int64
	points   pointsBuilder
}

// WriterOption configures an ObjectWriter or StreamWriter.
type WriterOption func(*int64)

// WithPointInterval sets how far apart (in bytes) slice points are at most
// (default DefaultPointInterval).
func WithPointInterval(n int64) WriterOption {
	return func(iv *int64) {
		if n > 0 {
			*iv = n
		}
	}
}

func pointInterval(opts []WriterOption) int64 {
	iv := int64(DefaultPointInterval)
	for _, o := range opts {
		o(&iv)
	}
	return iv
}

func appendHeader(b []byte) []byte {
	b = append(b, objectMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, ObjectVersion)
	return binary.BigEndian.AppendUint16(b, 0)
}

// NewObjectWriter starts an object; sizeHint preallocates the buffer.
func NewObjectWriter(sizeHint int, opts ...WriterOption) *ObjectWriter {
	w := &ObjectWriter{buf: make([]byte, 0, HeaderSize+sizeHint+TrailerSize+64), interval: pointInterval(opts)}
	w.buf = appendHeader(w.buf)
	return w
}

// Buffer returns the object's bytes so far, to which a caller appends one
// slice's batches (for example with Codec.AppendBatch) between BeginSlice
// and EndSlice. It avoids copying batches into the object.
func (w *ObjectWriter) Buffer() []byte { return w.buf }

// BeginSlice marks the start of a partition slice at the current end.
func (w *ObjectWriter) BeginSlice(topicID string, partition int32) error {
	if err := checkBegin(w.open, topicID); err != nil {
		return err
	}
	w.open = true
	w.slices = append(w.slices, SliceInfo{TopicID: topicID, Partition: partition, Offset: int64(len(w.buf)), BaseOffset: -1})
	return nil
}

func checkBegin(open bool, topicID string) error {
	if open {
		return errors.New("segments: slice already open")
	}
	if len(topicID) > MaxTopicIDLen {
		return fmt.Errorf("segments: topic id longer than %d bytes", MaxTopicIDLen)
	}
	return nil
}

// EndSlice closes the open slice. buf is the buffer from Buffer with the
// slice's batches appended; info supplies the counts and timestamps (its
// TopicID, Partition, Offset, Length and Points are set here).
func (w *ObjectWriter) EndSlice(buf []byte, info SliceInfo) error {
	if !w.open {
		return errors.New("segments: no open slice")
	}
	cur := &w.slices[len(w.slices)-1]
	if len(buf) < len(w.buf) {
		return errors.New("segments: slice buffer shrank")
	}
	info.TopicID, info.Partition, info.Offset = cur.TopicID, cur.Partition, cur.Offset
	info.Length = int64(len(buf)) - cur.Offset
	points, err := slicePoints(buf[cur.Offset:], w.interval, &w.points)
	if err != nil {
		return err
	}
	info.Points = points
	*cur = info
	w.buf = buf
	w.open = false
	return nil
}

// AddSlice appends a whole slice of already-encoded batches.
func (w *ObjectWriter) AddSlice(data []byte, info SliceInfo) error {
	if err := w.BeginSlice(info.TopicID, info.Partition); err != nil {
		return err
	}
	return w.EndSlice(append(w.Buffer(), data...), info)
}

// Slices returns the slices written so far.
func (w *ObjectWriter) Slices() []SliceInfo { return w.slices }

// Finish appends the footer and trailer and returns the object's bytes.
func (w *ObjectWriter) Finish() ([]byte, []SliceInfo, error) {
	if w.open {
		return nil, nil, errors.New("segments: slice still open")
	}
	w.buf = appendTail(w.buf, len(w.buf), w.slices)
	return w.buf, w.slices, nil
}

// appendTail appends the footer and trailer of an object whose footer
// starts at byte footerAt (where b ends: b may hold just the tail).
func appendTail(b []byte, footerAt int, slices []SliceInfo) []byte {
	start := len(b)
	b = appendFooter(b, slices)
	footer := b[start:]
	b = binary.BigEndian.AppendUint64(b, uint64(footerAt))
	b = binary.BigEndian.AppendUint32(b, uint32(len(footer)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(footer, castagnoli))
	b = binary.BigEndian.AppendUint16(b, ObjectVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	return append(b, objectMagic[:]...)
}

func appendFooter(b []byte, slices []SliceInfo) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(slices)))
	for _, s := range slices {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.TopicID)))
		b = append(b, s.TopicID...)
		b = binary.BigEndian.AppendUint32(b, uint32(s.Partition))
		for _, v := range [...]int64{s.Offset, s.Length, s.BaseOffset, s.Records, s.FirstDelta, s.LastDelta, s.MinTimestamp, s.MaxTimestamp} {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(s.Points)))
		for _, p := range s.Points {
			b = binary.BigEndian.AppendUint64(b, uint64(p.Delta))
			b = binary.BigEndian.AppendUint64(b, uint64(p.Pos))
			b = binary.BigEndian.AppendUint64(b, uint64(p.MaxTs))
		}
	}
	return b
}

// Trailer locates the footer.
type Trailer struct {
	FooterOffset int64
	FooterLength int64
	FooterCRC    uint32
	Version      uint16
}

// ParseTrailer decodes the last TrailerSize bytes of an object of objectSize
// bytes.
func ParseTrailer(tail []byte, objectSize int64) (Trailer, error) {
	at := objectSize - int64(len(tail))
	if len(tail) != TrailerSize {
		return Trailer{}, formatErr(ErrTruncated, objectSize, "trailer needs %d bytes, have %d", TrailerSize, len(tail))
	}
	if [4]byte(tail[20:24]) != objectMagic {
		return Trailer{}, formatErr(ErrBadMagic, at+20, "trailer magic %q, want %q", tail[20:24], objectMagic[:])
	}
	t := Trailer{
		FooterOffset: int64(binary.BigEndian.Uint64(tail[0:])),
		FooterLength: int64(binary.BigEndian.Uint32(tail[8:])),
		FooterCRC:    binary.BigEndian.Uint32(tail[12:]),
		Version:      binary.BigEndian.Uint16(tail[16:]),
	}
	if !readsVersion(t.Version) {
		return Trailer{}, formatErr(ErrUnsupportedVersion, at+16, "object version %d, this build reads 1 and 2", t.Version)
	}
	if t.FooterOffset < HeaderSize || t.FooterOffset > at || t.FooterLength != at-t.FooterOffset || t.FooterLength < 4 {
		return Trailer{}, formatErr(ErrMalformed, at, "footer at %d+%d does not end at the trailer (byte %d)", t.FooterOffset, t.FooterLength, at)
	}
	return t, nil
}

// ParseFooter decodes a footer read from position t.FooterOffset and checks
// every slice lies between the header and the footer.
func ParseFooter(footer []byte, t Trailer) ([]SliceInfo, error) {
	base := t.FooterOffset
	if int64(len(footer)) != t.FooterLength {
		return nil, formatErr(ErrTruncated, base+int64(len(footer)), "footer of %d bytes, have %d", t.FooterLength, len(footer))
	}
	if got := crc32.Checksum(footer, castagnoli); got != t.FooterCRC {
		return nil, formatErr(ErrChecksum, base, "footer CRC-32C is %08x, computed %08x", t.FooterCRC, got)
	}
	if len(footer) < 4 {
		return nil, formatErr(ErrTruncated, base+int64(len(footer)), "footer count needs 4 bytes")
	}
	n := binary.BigEndian.Uint32(footer)
	entrySize := minEntrySize
	if t.Version >= 2 {
		entrySize += 4
	}
	if uint64(n)*uint64(entrySize) > uint64(len(footer)-4) {
		return nil, formatErr(ErrMalformed, base, "footer claims %d slices in %d bytes", n, len(footer))
	}
	slices := make([]SliceInfo, 0, n)
	p := 4
	end := func() int64 { return base + int64(p) }
	for i := uint32(0); i < n; i++ {
		if len(footer)-p < 2 {
			return nil, formatErr(ErrTruncated, end(), "footer entry %d", i)
		}
		idLen := int(binary.BigEndian.Uint16(footer[p:]))
		p += 2
		if len(footer)-p < idLen+entrySize-2 {
			return nil, formatErr(ErrTruncated, base+int64(len(footer)), "footer entry %d needs %d bytes, have %d", i, idLen+entrySize-2, len(footer)-p)
		}
		s := SliceInfo{TopicID: string(footer[p : p+idLen])}
		p += idLen
		s.Partition = int32(binary.BigEndian.Uint32(footer[p:]))
		p += 4
		fields := [...]*int64{&s.Offset, &s.Length, &s.BaseOffset, &s.Records, &s.FirstDelta, &s.LastDelta, &s.MinTimestamp, &s.MaxTimestamp}
		for _, f := range fields {
			*f = int64(binary.BigEndian.Uint64(footer[p:]))
			p += 8
		}
		if s.Offset < HeaderSize || s.Length < 0 || s.Offset > t.FooterOffset-s.Length {
			return nil, formatErr(ErrMalformed, end(), "slice %d at %d+%d lies outside the object body [%d, %d)", i, s.Offset, s.Length, HeaderSize, t.FooterOffset)
		}
		if s.Records < 0 || s.LastDelta < -1 || s.Records > s.LastDelta+1 || s.LastDelta == math.MaxInt64 {
			return nil, formatErr(ErrMalformed, end(), "slice %d holds %d records over last delta %d", i, s.Records, s.LastDelta)
		}
		if t.Version >= 2 {
			np := binary.BigEndian.Uint32(footer[p:])
			p += 4
			if uint64(np)*pointSize > uint64(len(footer)-p) {
				return nil, formatErr(ErrTruncated, base+int64(len(footer)), "slice %d claims %d points in %d bytes", i, np, len(footer)-p)
			}
			s.Points = make([]Point, np)
			for j := range s.Points {
				s.Points[j] = Point{
					Delta: int64(binary.BigEndian.Uint64(footer[p:])),
					Pos:   int64(binary.BigEndian.Uint64(footer[p+8:])),
					MaxTs: int64(binary.BigEndian.Uint64(footer[p+16:])),
				}
				p += pointSize
			}
			if !checkPoints(s.Points, s.Length, s.Span()) {
				return nil, formatErr(ErrMalformed, end(), "slice %d has points that are not ascending batch starts inside it", i)
			}
		}
		slices = append(slices, s)
	}
	if p != len(footer) {
		return nil, formatErr(ErrMalformed, end(), "%d trailing footer bytes", len(footer)-p)
	}
	return slices, nil
}

// ParseObject decodes the header, footer and trailer of a whole object held
// in memory and returns its slices. Batch contents are checked lazily, when
// a slice is decoded.
func ParseObject(obj []byte) ([]SliceInfo, error) {
	if len(obj) < HeaderSize+TrailerSize {
		return nil, formatErr(ErrTruncated, int64(len(obj)), "object needs at least %d bytes", HeaderSize+TrailerSize)
	}
	if [4]byte(obj[:4]) != objectMagic {
		return nil, formatErr(ErrBadMagic, 0, "object magic %q, want %q", obj[:4], objectMagic[:])
	}
	v := binary.BigEndian.Uint16(obj[4:])
	if !readsVersion(v) {
		return nil, formatErr(ErrUnsupportedVersion, 4, "object version %d, this build reads 1 and 2", v)
	}
	size := int64(len(obj))
	t, err := ParseTrailer(obj[size-TrailerSize:], size)
	if err != nil {
		return nil, err
	}
	if t.Version != v {
		return nil, formatErr(ErrMalformed, size-8, "trailer says version %d, header %d", t.Version, v)
	}
	return ParseFooter(obj[t.FooterOffset:t.FooterOffset+t.FooterLength], t)
}

// ReadFooter reads just the footer of a stored object: a stat, a ranged read
// of the trailer, and one of the footer.
func ReadFooter(ctx context.Context, b Bucket, key string) ([]SliceInfo, error) {
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if info.Size < HeaderSize+TrailerSize {
		return nil, formatErr(ErrTruncated, info.Size, "object needs at least %d bytes", HeaderSize+TrailerSize)
	}
	tail, err := b.GetRange(ctx, key, info.Size-TrailerSize, TrailerSize)
	if err != nil {
		return nil, err
	}
	t, err := ParseTrailer(tail, info.Size)
	if err != nil {
		return nil, err
	}
	footer, err := b.GetRange(ctx, key, t.FooterOffset, t.FooterLength)
	if err != nil {
		return nil, err
	}
	return ParseFooter(footer, t)
}
