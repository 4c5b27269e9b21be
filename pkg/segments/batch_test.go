package segments_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/streambed/streambed/pkg/segments"
)

var allCodecs = []segments.Compression{
	segments.CompressionNone, segments.CompressionGzip, segments.CompressionSnappy,
	segments.CompressionLZ4, segments.CompressionZstd,
}

func sampleRecords() []segments.Record {
	return []segments.Record{
		{Timestamp: 1700000000000, Key: []byte("user-1"), Value: []byte(`{"n":1}`), Headers: []segments.Header{{Key: "trace", Value: []byte("abc")}, {Key: "trace", Value: nil}, {Key: "", Value: []byte{}}}},
		{Timestamp: 1699999999000, Key: nil, Value: []byte("unkeyed, earlier timestamp")},
		{Timestamp: 1700000005000, Key: []byte("user-1"), Value: nil}, // tombstone
		{Timestamp: 1700000005000, Key: []byte{}, Value: []byte{}},    // empty, not null
		{Timestamp: 1700000006000, Key: []byte{0, 0xff, 0x80}, Value: bytes.Repeat([]byte("x"), 3000)},
	}
}

// normalize maps empty non-nil slices as decoders return them, so records
// compare by meaning (null vs empty is kept).
func assertRecords(t *testing.T, got, want []segments.Record, base int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("decoded %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != base+int64(i) && w.Offset == 0 {
			t.Errorf("record %d offset %d, want %d", i, g.Offset, base+int64(i))
		}
		if w.Offset != 0 && g.Offset != w.Offset {
			t.Errorf("record %d offset %d, want %d", i, g.Offset, w.Offset)
		}
		if g.Timestamp != w.Timestamp {
			t.Errorf("record %d timestamp %d, want %d", i, g.Timestamp, w.Timestamp)
		}
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Errorf("record %d key/value = %q/%q (nil %v/%v), want %q/%q (nil %v/%v)", i, g.Key, g.Value, g.Key == nil, g.Value == nil, w.Key, w.Value, w.Key == nil, w.Value == nil)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d has %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d = %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestBatchRoundTrip(t *testing.T) {
	codec := segments.NewCodec()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs := sampleRecords()
			prod := &segments.Producer{ID: 42, Epoch: 3, BaseSequence: 17}
			b, st, err := codec.AppendBatch(nil, recs, segments.BatchOptions{Compression: c, Producer: prod})
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != 5 || st.Span != 5 || st.MinTimestamp != 1699999999000 || st.MaxTimestamp != 1700000006000 {
				t.Fatalf("stats = %+v", st)
			}
			// The stored base offset is 0; the CRC does not cover it.
			if binary.BigEndian.Uint64(b) != 0 {
				t.Fatal("base offset not stored as 0")
			}
			h, err := segments.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.Compression() != c || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 17 || h.NumRecords != 5 || h.LastOffsetDelta != 4 || h.Size() != len(b) {
				t.Fatalf("header = %+v", h)
			}
			got, err := codec.DecodeSlice(b, 1000, nil)
			if err != nil {
				t.Fatal(err)
			}
			assertRecords(t, got, recs, 1000)
		})
	}
}

func TestBatchWithoutProducer(t *testing.T) {
	b, _, err := segments.NewCodec().AppendBatch(nil, sampleRecords()[:1], segments.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := segments.ReadBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 {
		t.Fatalf("non-idempotent batch header = %+v, want producer -1/-1/-1", h)
	}
}

func TestLogAppendTime(t *testing.T) {
	codec := segments.NewCodec()
	recs := []segments.Record{{Timestamp: 5000, Value: []byte("a")}, {Timestamp: 5000, Value: []byte("b")}}
	b, _, err := codec.AppendBatch(nil, recs, segments.BatchOptions{LogAppendTime: true})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := segments.ReadBatchHeader(b)
	if !h.LogAppendTime() || h.MaxTimestamp != 5000 {
		t.Fatalf("header %+v", h)
	}
	got, err := codec.DecodeSlice(b, 0, nil)
	if err != nil || got[1].Timestamp != 5000 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

// TestTiledBatches: several batches in one slice take consecutive base
// offsets, and a sparse (key-compacted) batch keeps its range.
func TestTiledBatches(t *testing.T) {
	codec := segments.NewCodec()
	var slice []byte
	var err error
	slice, _, err = codec.AppendBatch(slice, sampleRecords()[:2], segments.BatchOptions{}) // offsets 100,101
	if err != nil {
		t.Fatal(err)
	}
	sparse := []segments.Record{{Offset: 104, Timestamp: 1, Value: []byte("kept")}, {Offset: 107, Timestamp: 2, Value: []byte("kept too")}}
	slice, st, err := codec.AppendSparseBatch(slice, 102, 109, sparse, segments.BatchOptions{Compression: segments.CompressionZstd}) // range 102..109
	if err != nil {
		t.Fatal(err)
	}
	if st.Span != 8 || st.Records != 2 {
		t.Fatalf("sparse stats %+v", st)
	}
	slice, _, err = codec.AppendSparseBatch(slice, 110, 112, nil, segments.BatchOptions{}) // empty, range 110..112
	if err != nil {
		t.Fatal(err)
	}
	slice, _, err = codec.AppendBatch(slice, sampleRecords()[:1], segments.BatchOptions{Compression: segments.CompressionLZ4}) // 113
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.DecodeSlice(slice, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for _, r := range got {
		offsets = append(offsets, r.Offset)
	}
	if want := []int64{100, 101, 104, 107, 113}; !reflect.DeepEqual(offsets, want) {
		t.Fatalf("offsets %v, want %v", offsets, want)
	}
	ss, err := segments.ScanSlice(slice)
	if err != nil || ss.Span != 14 || ss.Records != 5 {
		t.Fatalf("ScanSlice = %+v, %v", ss, err)
	}
}

func TestSparseBatchRejectsBadOffsets(t *testing.T) {
	codec := segments.NewCodec()
	for _, offs := range [][]int64{{5, 5}, {6, 4}, {1}, {11}} {
		var recs []segments.Record
		for _, o := range offs {
			recs = append(recs, segments.Record{Offset: o})
		}
		if _, _, err := codec.AppendSparseBatch(nil, 2, 10, recs, segments.BatchOptions{}); err == nil {
			t.Errorf("offsets %v in [2,10] accepted", offs)
		}
	}
	if _, _, err := codec.AppendBatch(nil, nil, segments.BatchOptions{}); err == nil {
		t.Error("empty dense batch accepted")
	}
}

func TestXerialSnappy(t *testing.T) {
	// Build a batch whose records section is xerial-framed snappy, as the
	// Java client writes it, by re-framing a raw-snappy batch.
	codec := segments.NewCodec()
	recs := sampleRecords()
	raw, _, err := codec.AppendBatch(nil, recs, segments.BatchOptions{Compression: segments.CompressionSnappy})
	if err != nil {
		t.Fatal(err)
	}
	framed := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	// Split into two xerial blocks to exercise the loop: re-encode halves.
	plain, err := rawRecordsSection(codec, raw)
	if err != nil {
		t.Fatal(err)
	}
	half := len(plain) / 2
	for _, part := range [][]byte{plain[:half], plain[half:]} {
		enc := snappyEncode(part)
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(enc)))
		framed = append(framed, enc...)
	}
	b := rebuildBatch(t, raw, framed)
	got, err := codec.DecodeSlice(b, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertRecords(t, got, recs, 0)
}

func TestCorruptBatches(t *testing.T) {
	codec := segments.NewCodec()
	good, _, err := codec.AppendBatch(nil, sampleRecords(), segments.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		data []byte
		kind error
		at   int64
	}{
		{"truncated header", good[:30], segments.ErrTruncated, 30},
		{"truncated body", good[:len(good)-10], segments.ErrTruncated, int64(len(good) - 10)},
		{"bad magic", mutate(func(b []byte) []byte { b[16] = 1; return b }), segments.ErrBadMagic, 16},
		{"flipped record byte", mutate(func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }), segments.ErrChecksum, 17},
		{"short length", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }), segments.ErrMalformed, 8},
		{"second batch truncated", append(append([]byte(nil), good...), good[:70]...), segments.ErrTruncated, int64(len(good) + 70)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := codec.DecodeSlice(c.data, 0, nil)
			var fe *segments.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want a FormatError of kind %v", err, c.kind)
			}
			if fe.At != c.at {
				t.Fatalf("error at byte %d, want %d (%v)", fe.At, c.at, err)
			}
		})
	}
}

// TestRecordCountLies: a batch with a valid CRC whose record count or
// contents lie must fail cleanly, not panic or over-allocate.
func TestRecordCountLies(t *testing.T) {
	codec := segments.NewCodec()
	good, _, _ := codec.AppendBatch(nil, sampleRecords(), segments.BatchOptions{})
	for _, n := range []int32{4, 6, 1 << 30} {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[57:], uint32(n))
		binary.BigEndian.PutUint32(b[23:], uint32(max(n, 5)-1)) // keep count <= range
		b = recrc(b)
		if _, err := codec.DecodeSlice(b, 0, nil); !errors.Is(err, segments.ErrMalformed) {
			t.Errorf("count %d: err = %v, want ErrMalformed", n, err)
		}
	}
}

func TestDecompressionBombRefused(t *testing.T) {
	small := segments.NewCodec(segments.WithMaxBatchBytes(64 << 10))
	big := segments.NewCodec()
	recs := []segments.Record{{Value: bytes.Repeat([]byte{'a'}, 1<<20)}}
	for _, c := range allCodecs[1:] {
		b, _, err := big.AppendBatch(nil, recs, segments.BatchOptions{Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := small.DecodeSlice(b, 0, nil); err == nil {
			t.Errorf("%v: 1 MiB batch decoded under a 64 KiB limit", c)
		}
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range allCodecs {
		if got, err := segments.ParseCompression(c.String()); err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := segments.ParseCompression("brotli"); err == nil {
		t.Error("brotli accepted")
	}
	if s := segments.Compression(9).String(); s != "compression(9)" {
		t.Errorf("String = %q", s)
	}
}

func Example() {
	codec := segments.NewCodec()
	batch, _, _ := codec.AppendBatch(nil, []segments.Record{{Timestamp: 1, Key: []byte("k"), Value: []byte("v")}}, segments.BatchOptions{Compression: segments.CompressionZstd})
	recs, _ := codec.DecodeSlice(batch, 41, nil)
	fmt.Println(recs[0].Offset, string(recs[0].Key), string(recs[0].Value))
	// Output: 41 k v
}
