package segments_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/streambed/streambed/pkg/segments"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// buildObject writes a deterministic object: one slice per codec, plus a
// compacted (sparse) slice of a second topic.
func buildObject(t testing.TB, codecs []segments.Compression) []byte {
	t.Helper()
	codec := segments.NewCodec()
	w := segments.NewObjectWriter(0)
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
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return obj
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
	if want := golden(t, "object-v1-none.sbsg", obj); !bytes.Equal(obj, want) {
		t.Fatalf("encoding changed: %d bytes, golden %d bytes; if intended, bump ObjectVersion and keep reading v1", len(obj), len(want))
	}
}

// TestGoldenDecoding reads objects written by earlier builds (compressed
// with every codec) and compares their decoded contents. Compressed bytes
// may legitimately change when a codec library changes, so only the
// decoded form is pinned; the stored objects must stay readable forever.
func TestGoldenDecoding(t *testing.T) {
	path := filepath.Join("testdata", "object-v1-all-codecs.sbsg")
	if *update {
		if err := os.WriteFile(path, buildObject(t, allCodecs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"object-v1-none.sbsg", "object-v1-all-codecs.sbsg"} {
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
	if len(slices) != 6 {
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
	last := slices[5]
	if last.TopicID != "t-0002" || last.BaseOffset != 200 || last.Records != 2 || last.Span() != 10 || last.FirstDelta != 3 {
		t.Errorf("sparse slice = %+v", last)
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
		{"trailer version", mut(func(b []byte) { b[n-7] = 2 }), segments.ErrUnsupportedVersion, n - 8},
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
			if fe.At != c.at {
				t.Fatalf("at byte %d, want %d: %v", fe.At, c.at, err)
			}
		})
	}
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
