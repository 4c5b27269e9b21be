package segments

import (
	"encoding/binary"
	"math"
)

// DefaultPointInterval is how far apart a slice's start points are at most
// (unless one batch alone is larger): a reader looking for one offset reads
// about this much before it reaches the batch it wants.
const DefaultPointInterval = 1 << 20

// Point is an entry of a slice's sparse batch index: a batch where a reader
// can start decoding. A slice's points are ascending in both fields; the
// first is always {0, 0}.
type Point struct {
	// Delta is the batch's base offset relative to the slice's base offset.
	Delta int64 `json:"d"`
	// Pos is the batch's byte position relative to the slice's start.
	Pos int64 `json:"p"`
	// MaxTs is the largest record timestamp from this point up to the next
	// one (-1 if those batches hold no records), so a timestamp lookup can
	// skip whole stretches.
	MaxTs int64 `json:"t"`
}

// pointSize is a point's encoded size in a version 2 footer.
const pointSize = 24

// pointsBuilder places points while batches are appended to a slice: a
// new point starts at a batch that would make the current stretch longer
// than the interval.
type pointsBuilder struct {
	interval int64
	points   []Point
	span     int64 // offsets covered so far (the next batch's delta)
	size     int64 // bytes so far (the next batch's position)
}

func (b *pointsBuilder) reset(interval int64) {
	*b = pointsBuilder{interval: interval, points: b.points[:0]}
}

// add records a batch of size bytes covering span offsets whose largest
// timestamp is maxTs (-1 when it holds no records).
func (b *pointsBuilder) add(size, span, maxTs int64) {
	n := len(b.points)
	if n == 0 || b.size+size-b.points[n-1].Pos > b.interval {
		b.points = append(b.points, Point{Delta: b.span, Pos: b.size, MaxTs: maxTs})
	} else {
		b.points[n-1].MaxTs = max(b.points[n-1].MaxTs, maxTs)
	}
	b.span += span
	b.size += size
}

// result returns a copy of the points placed.
func (b *pointsBuilder) result() []Point {
	return append([]Point(nil), b.points...)
}

// batchFrame is what a writer needs to know of a batch it just encoded:
// its size, the offsets it spans and its largest timestamp.
type batchFrame struct {
	size, span, maxTs int64
}

// peekFrame reads a batch's frame from its fixed header without checking
// its CRC (writers use it on batches they have just encoded; readers
// validate with ReadBatchHeader).
func peekFrame(b []byte) (batchFrame, error) {
	if len(b) < BatchHeaderSize {
		return batchFrame{}, formatErr(ErrTruncated, int64(len(b)), "record batch header needs %d bytes, have %d", BatchHeaderSize, len(b))
	}
	length := int64(int32(binary.BigEndian.Uint32(b[batchLengthOffset:])))
	if length < batchLengthBase || 12+length > int64(len(b)) {
		return batchFrame{}, formatErr(ErrMalformed, batchLengthOffset, "record batch length %d does not fit %d bytes", length, len(b))
	}
	if b[batchMagicOffset] != batchMagic {
		return batchFrame{}, formatErr(ErrBadMagic, batchMagicOffset, "record batch magic %d, want %d", int8(b[batchMagicOffset]), batchMagic)
	}
	lastDelta := int64(int32(binary.BigEndian.Uint32(b[23:])))
	maxTs := int64(binary.BigEndian.Uint64(b[35:]))
	if int32(binary.BigEndian.Uint32(b[57:])) <= 0 {
		maxTs = noTimestamp
	}
	if lastDelta < -1 {
		return batchFrame{}, formatErr(ErrMalformed, 23, "negative last offset delta %d", lastDelta)
	}
	return batchFrame{size: 12 + length, span: lastDelta + 1, maxTs: maxTs}, nil
}

// slicePoints places the points of a slice held in memory.
func slicePoints(data []byte, interval int64, pb *pointsBuilder) ([]Point, error) {
	pb.reset(interval)
	for at := int64(0); at < int64(len(data)); {
		f, err := peekFrame(data[at:])
		if err != nil {
			return nil, shift(err, at)
		}
		pb.add(f.size, f.span, f.maxTs)
		at += f.size
	}
	return pb.result(), nil
}

// StartPoints returns a slice's points; a slice written before points
// existed (format version 1) has one, at its start.
func (s *SliceInfo) StartPoints() []Point {
	if len(s.Points) > 0 || s.Length == 0 {
		return s.Points
	}
	return []Point{{Delta: 0, Pos: 0, MaxTs: s.MaxTimestamp}}
}

// checkPoints validates a slice's points against its bounds.
func checkPoints(points []Point, length, span int64) bool {
	if length == 0 {
		return len(points) == 0
	}
	if len(points) == 0 || points[0].Delta != 0 || points[0].Pos != 0 {
		return false
	}
	for i, p := range points {
		if p.Pos >= length || p.Delta > span || p.Delta < 0 || p.MaxTs < noTimestamp || p.MaxTs == math.MaxInt64 {
			return false
		}
		if i > 0 && (p.Pos <= points[i-1].Pos || p.Delta < points[i-1].Delta) {
			return false
		}
	}
	return true
}
