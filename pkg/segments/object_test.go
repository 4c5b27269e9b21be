package segments_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/streambed/streambed/pkg/segments"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenPointInterval is small so the golden objects' slices of several
// batches have several points.
const goldenPointInterval = 7000

// buildObject writes a deterministic object: one slice per codec, a
// compacted (sparse) slice of a second topic, and a slice of several
// batches of a third.
func buildObject(t testing.TB, codecs []segments.Compression) []byte {
	t.Helper()
	codec := segments.NewCodec()
	w := segments.NewObjectWriter(0, segments.WithPointInterval(goldenPointInterval))
	for i, c := range codecs {
		if err := w.BeginSlice("t-0001", int32(i)); err != nil {
			t.Fatal(err)
		}
		buf, st, err := codec.AppendBatch(w.Buffer(), sampleRecords(), segments.BatchOptions{Compression: c, Producer: &segments.Producer{ID: 7, Epoch: 1, BaseSequence: int32(10 * i)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.EndSlice(buf, segments.SliceInfo{BaseOffset: -1, Records: int64(st.Records), LastDelta: st.Span - 1, MinTimestamp: st.MinTimestamp, MaxTimestamp: st.MaxTimestamp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.BeginSlice("t-0002", 5); err != nil {
		t.Fatal(err)
	}
	kept := []segments.Record{{Offset: 203, Timestamp: 1700000000000, Key: []byte("a"), Value: []byte("latest a")}, {Offset: 209, Timestamp: 1700000001000, Key: []byte("b"), Value: nil}}
	buf, st, err := codec.AppendSparseBatch(w.Buffer(), 200, 209, kept, segments.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.EndSlice(buf, segments.SliceInfo{BaseOffset: 200, Records: int64(st.Records), FirstDelta: 3, LastDelta: st.Span - 1, MinTimestamp: st.MinTimestamp, MaxTimestamp: st.MaxTimestamp}); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginSlice("t-0003", 0); err != nil {
		t.Fatal(err)
	}
	buf, info := appendBatches(t, codec, w.Buffer(), 6)
	if err := w.EndSlice(buf, info); err != nil {
		t.Fatal(err)
	}
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// appendBatches appends n batches of sampleRecords, the i-th with
// timestamps shifted by i seconds, and returns the slice's info.
func appendBatches(t testing.TB, codec *segments.Codec, buf []byte, n int) ([]byte, segments.SliceInfo) {
	t.Helper()
	info := segments.SliceInfo{BaseOffset: -1, MinTimestamp: -1, MaxTimestamp: -1}
	for i := range n {
		recs := sampleRecords()
		for j := range recs {
			recs[j].Timestamp += int64(i) * 1000
		}
		var st segments.BatchStats
		var err error
		if buf, st, err = codec.AppendBatch(buf, recs, segments.BatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			info.MinTimestamp = st.MinTimestamp
		}
		info.Records += int64(st.Records)
		info.LastDelta += st.Span
		info.MaxTimestamp = max(info.MaxTimestamp, st.MaxTimestamp)
	}
	info.LastDelta--
	return buf, info
}

// render decodes every slice of an object into a stable JSON form.
func render(t *testing.T, obj []byte) []byte {
	t.Helper()
	slices, err := segments.ParseObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Offset    int64
		Timestamp int64
		Key       *string
		Value     *string
		Headers   [][2]*string
	}
	type slice struct {
		Info    segments.SliceInfo
		Records []rec
	}
	b64 := func(b []byte) *string {
		if b == nil {
			return nil
		}
		s := base64.StdEncoding.EncodeToString(b)
		return &s
	}
	var out []slice
	codec := segments.NewCodec()
	for _, s := range slices {
		base := int64(1000 * (s.Partition + 1))
		if s.BaseOffset >= 0 {
			base = s.BaseOffset
		}
		recs, err := codec.DecodeSlice(obj[s.Offset:s.Offset+s.Length], base, nil)
		if err != nil {
			t.Fatalf("slice %s/%d: %v", s.TopicID, s.Partition, err)
		}
		sl := slice{Info: s}
		for _, r := range recs {
			x := rec{Offset: r.Offset, Timestamp: r.Timestamp, Key: b64(r.Key), Value: b64(r.Value)}
			for _, h := range r.Headers {
				k := h.Key
				x.Headers = append(x.Headers, [2]*string{&k, b64(h.Value)})
			}
			sl.Records = append(sl.Records, x)
		}
		out = append(out, sl)
	}
	j, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(j, '\n')
}

func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	return want
}

// TestGoldenUncompressedBytes pins the exact bytes of the format: any change
// to how batches or objects are laid out fails here.
func TestGoldenUncompressedBytes(t *testing.T) {
	obj := buildObject(t, []segments.Compression{segments.CompressionNone})
	if want := golden(t, "object-v2-none.sbsg", obj); !bytes.Equal(obj, want) {
		t.Fatalf("encoding changed: %d bytes, golden %d bytes; if intended, bump ObjectVersion and keep reading older versions", len(obj), len(want))
	}
}

// TestGoldenDecoding reads objects written by earlier builds (compressed
// with every codec, in every format version) and compares their decoded
// contents. Compressed bytes may legitimately change when a codec library
// changes, so only the decoded form is pinned; the stored objects must
// stay readable forever. Version 1 files were written by the last build
// that wrote version 1 and are never regenerated.
func TestGoldenDecoding(t *testing.T) {
	path := filepath.Join("testdata", "object-v2-all-codecs.sbsg")
	if *update {
		if err := os.WriteFile(path, buildObject(t, allCodecs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"object-v1-none.sbsg", "object-v1-all-codecs.sbsg", "object-v2-none.sbsg", "object-v2-all-codecs.sbsg"} {
		obj, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		got := render(t, obj)
		if want := golden(t, name+".json", got); !bytes.Equal(got, want) {
			t.Errorf("%s decodes differently from %s.json", name, name)
		}
	}
}

func TestObjectFooter(t *testing.T) {
	obj := buildObject(t, allCodecs)
	slices, err := segments.ParseObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(slices) != 7 {
		t.Fatalf("%d slices", len(slices))
	}
	prevEnd := int64(segments.HeaderSize)
	for i, s := range slices[:5] {
		if s.TopicID != "t-0001" || s.Partition != int32(i) || s.Records != 5 || s.FirstDelta != 0 || s.LastDelta != 4 || s.BaseOffset != -1 {
			t.Errorf("slice %d = %+v", i, s)
		}
		if s.Offset != prevEnd {
			t.Errorf("slice %d starts at %d, previous ended at %d", i, s.Offset, prevEnd)
		}
		prevEnd = s.Offset + s.Length
		st, err := segments.ScanSlice(obj[s.Offset : s.Offset+s.Length])
		if err != nil || st.Records != 5 || st.Span != 5 {
			t.Errorf("slice %d scan %+v %v", i, st, err)
		}
	}
	sparse := slices[5]
	if sparse.TopicID != "t-0002" || sparse.BaseOffset != 200 || sparse.Records != 2 || sparse.Span() != 10 || sparse.FirstDelta != 3 {
		t.Errorf("sparse slice = %+v", sparse)
	}
	for _, s := range slices {
		checkPointsMatchBatches(t, s, obj[s.Offset:s.Offset+s.Length], goldenPointInterval)
	}
	if n := len(slices[6].Points); n < 2 || n == 6 {
		t.Errorf("a slice of 6 batches has %d points; the interval should make it 2-5", n)
	}
}

// checkPointsMatchBatches: every point is a batch start with the right
// offset delta, the first is at the start, no stretch between points is
// longer than the interval unless it is one batch, and MaxTs is the
// stretch's largest timestamp.
func checkPointsMatchBatches(t *testing.T, s segments.SliceInfo, data []byte, interval int64) {
	t.Helper()
	type batch struct{ delta, pos, size, maxTs int64 }
	var batches []batch
	err := segments.WalkBatches(data, 0, func(b segments.RawBatch) error {
		maxTs := b.Header.MaxTimestamp
		if b.Header.NumRecords == 0 {
			maxTs = -1
		}
		batches = append(batches, batch{b.BaseOffset, b.At, int64(len(b.Bytes)), maxTs})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pts := s.Points
	if len(pts) == 0 || pts[0] != (segments.Point{Delta: 0, Pos: 0, MaxTs: pts[0].MaxTs}) {
		t.Fatalf("%s/%d: points %v do not start at the slice start", s.TopicID, s.Partition, pts)
	}
	pi := -1
	for _, b := range batches {
		if pi+1 < len(pts) && pts[pi+1].Pos == b.pos {
			pi++
			if pts[pi].Delta != b.delta {
				t.Errorf("%s/%d: point at byte %d says delta %d, the batch starts at %d", s.TopicID, s.Partition, b.pos, pts[pi].Delta, b.delta)
			}
		}
		if b.pos+b.size-pts[pi].Pos > interval && b.pos != pts[pi].Pos {
			t.Errorf("%s/%d: the stretch from byte %d runs past %d bytes without a point", s.TopicID, s.Partition, pts[pi].Pos, interval)
		}
	}
	if pi != len(pts)-1 {
		t.Errorf("%s/%d: %d points, only %d at batch starts", s.TopicID, s.Partition, len(pts), pi+1)
	}
	for i, p := range pts {
		end := int64(len(data))
		if i+1 < len(pts) {
			end = pts[i+1].Pos
		}
		want := int64(-1)
		for _, b := range batches {
			if b.pos >= p.Pos && b.pos < end {
				want = max(want, b.maxTs)
			}
		}
		if p.MaxTs != want {
			t.Errorf("%s/%d: point %d MaxTs %d, want %d", s.TopicID, s.Partition, i, p.MaxTs, want)
		}
	}
}

func TestCorruptObjects(t *testing.T) {
	obj := buildObject(t, []segments.Compression{segments.CompressionNone, segments.CompressionZstd})
	n := int64(len(obj))
	mut := func(f func([]byte)) []byte { b := append([]byte(nil), obj...); f(b); return b }
	footerAt := int64(binary.BigEndian.Uint64(obj[n-24:]))
	cases := []struct {
		name string
		data []byte
		kind error
		at   int64
	}{
		{"empty", nil, segments.ErrTruncated, 0},
		{"too short", obj[:20], segments.ErrTruncated, 20},
		{"header magic", mut(func(b []byte) { b[0] = 'X' }), segments.ErrBadMagic, 0},
		{"header version", mut(func(b []byte) { b[5] = 9 }), segments.ErrUnsupportedVersion, 4},
		{"trailer magic", mut(func(b []byte) { b[n-1] = 'X' }), segments.ErrBadMagic, n - 4},
		{"trailer version", mut(func(b []byte) { b[n-7] = 9 }), segments.ErrUnsupportedVersion, n - 8},
		{"versions differ", mut(func(b []byte) { b[5] = 1 }), segments.ErrMalformed, n - 8},
		{"first point not at the start", refooter(obj, func(f []byte) { pointAt(f, 1, 0)[15] = 0xff }), segments.ErrMalformed, -1},
		{"points out of order", refooter(obj, func(f []byte) { binary.BigEndian.PutUint64(pointAt(f, 3, 1)[8:], 0) }), segments.ErrMalformed, -1},
		{"point past the slice", refooter(obj, func(f []byte) { binary.BigEndian.PutUint64(pointAt(f, 3, 1)[8:], 1<<40) }), segments.ErrMalformed, -1},
		{"point count too large", refooter(obj, func(f []byte) { binary.BigEndian.PutUint32(pointCount(f, 3), 1<<30) }), segments.ErrTruncated, -1},
		{"truncated tail", obj[:n-5], segments.ErrBadMagic, n - 5 - 4},
		{"footer bit flip", mut(func(b []byte) { b[footerAt+10] ^= 1 }), segments.ErrChecksum, footerAt},
		{"footer offset", mut(func(b []byte) { binary.BigEndian.PutUint64(b[n-24:], uint64(footerAt+1)) }), segments.ErrMalformed, n - 24},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := segments.ParseObject(c.data)
			var fe *segments.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want kind %v", err, c.kind)
			}
			if c.at >= 0 && fe.At != c.at {
				t.Fatalf("at byte %d, want %d: %v", fe.At, c.at, err)
			}
		})
	}
}

// refooter returns a copy of obj whose footer f changed, with the
// footer's CRC fixed so only the change is wrong.
func refooter(obj []byte, f func(footer []byte)) []byte {
	b := append([]byte(nil), obj...)
	n := len(b)
	at := binary.BigEndian.Uint64(b[n-24:])
	length := binary.BigEndian.Uint32(b[n-16:])
	footer := b[at : at+uint64(length)]
	f(footer)
	binary.BigEndian.PutUint32(b[n-12:], crc32.Checksum(footer, crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// pointsAt is the position of slice i's point count in a v2 footer.
func pointsAt(footer []byte, slice int) int {
	p := 4
	for i := 0; ; i++ {
		p += 2 + int(binary.BigEndian.Uint16(footer[p:])) + 4 + 64
		if i == slice {
			return p
		}
		p += 4 + 24*int(binary.BigEndian.Uint32(footer[p:]))
	}
}

// pointCount returns the bytes of slice i's point count.
func pointCount(footer []byte, slice int) []byte {
	p := pointsAt(footer, slice)
	return footer[p : p+4]
}

// pointAt returns the bytes of point j of slice i.
func pointAt(footer []byte, slice, j int) []byte {
	p := pointsAt(footer, slice) + 4 + 24*j
	return footer[p : p+24]
}

func TestFormatErrorMessage(t *testing.T) {
	_, err := segments.ParseObject(make([]byte, 10))
	if got := fmt.Sprint(err); got != "segments: truncated at byte 10: object needs at least 32 bytes" {
		t.Fatalf("message = %q", got)
	}
	_, err = segments.NewCodec().DecodeSlice([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0, 0, 0, 0, 7}, 0, nil)
	if got := fmt.Sprint(err); got != "segments: truncated at byte 17: record batch header needs 61 bytes, have 17" {
		t.Fatalf("message = %q", got)
	}
}

func TestWriterMisuse(t *testing.T) {
	w := segments.NewObjectWriter(0)
	if err := w.EndSlice(nil, segments.SliceInfo{}); err == nil {
		t.Error("EndSlice without BeginSlice")
	}
	if err := w.BeginSlice(string(make([]byte, 300)), 0); err == nil {
		t.Error("300-byte topic id accepted")
	}
	_ = w.BeginSlice("t", 0)
	if err := w.BeginSlice("t", 1); err == nil {
		t.Error("nested BeginSlice")
	}
	if _, _, err := w.Finish(); err == nil {
		t.Error("Finish with an open slice")
	}
}
