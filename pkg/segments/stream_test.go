package segments_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// copySlices rewrites every slice of obj through a StreamWriter, batch by
// batch as a BatchReader yields them.
func copySlices(t *testing.T, w *segments.StreamWriter, obj []byte) {
	t.Helper()
	slices, err := segments.ParseObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slices {
		if err := w.BeginSlice(s.TopicID, s.Partition); err != nil {
			t.Fatal(err)
		}
		br := segments.NewBatchReader(iotest.HalfReader(bytes.NewReader(obj[s.Offset:s.Offset+s.Length])), 0, 0)
		for {
			b, err := br.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteBatch(b.Bytes); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.EndSlice(s); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamWriterMatchesObjectWriter: an object streamed batch by batch
// is byte for byte the one assembled in memory, points included.
func TestStreamWriterMatchesObjectWriter(t *testing.T) {
	obj := buildObject(t, allCodecs)
	var out bytes.Buffer
	w := segments.NewStreamWriter(&out, segments.WithPointInterval(goldenPointInterval))
	copySlices(t, w, obj)
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), obj) {
		t.Fatalf("streamed object differs: %d bytes, in-memory %d", out.Len(), len(obj))
	}
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	b := membucket.New()
	obj := buildObject(t, allCodecs)
	slices, size, err := segments.Upload(ctx, b, "u/ok", func(w *segments.StreamWriter) error {
		copySlices(t, w, obj)
		return nil
	}, segments.WithPointInterval(goldenPointInterval))
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.GetRange(ctx, "u/ok", 0, -1)
	if err != nil || !bytes.Equal(got, obj) || size != int64(len(obj)) || len(slices) != 7 {
		t.Fatalf("uploaded %d bytes (reported %d, %d slices), want %d: %v", len(got), size, len(slices), len(obj), err)
	}
	// A fill that fails stores nothing and returns its own error.
	boom := errors.New("boom")
	_, _, err = segments.Upload(ctx, b, "u/failed", func(w *segments.StreamWriter) error {
		copySlices(t, w, obj)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed fill: %v", err)
	}
	if _, err := b.Stat(ctx, "u/failed"); !errors.Is(err, segments.ErrNotFound) {
		t.Fatalf("a failed fill stored an object: %v", err)
	}
	// A refused upload is the bucket's error; the writer is not left blocked.
	_, _, err = segments.Upload(ctx, b, "u/ok", func(w *segments.StreamWriter) error {
		copySlices(t, w, obj)
		return nil
	})
	if !errors.Is(err, segments.ErrAlreadyExists) {
		t.Fatalf("upload over an existing key: %v", err)
	}
}

func TestBatchReader(t *testing.T) {
	codec := segments.NewCodec()
	var data []byte
	data, _, _ = codec.AppendBatch(data, sampleRecords(), segments.BatchOptions{Compression: segments.CompressionZstd})
	data, _, _ = codec.AppendSparseBatch(data, 5, 14, []segments.Record{{Offset: 9, Value: []byte("x")}}, segments.BatchOptions{})
	data, _, _ = codec.AppendBatch(data, sampleRecords(), segments.BatchOptions{})

	var want []segments.RawBatch
	if err := segments.WalkBatches(data, 100, func(b segments.RawBatch) error {
		b.Bytes = bytes.Clone(b.Bytes)
		want = append(want, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	br := segments.NewBatchReader(iotest.OneByteReader(bytes.NewReader(data)), 100, 0)
	for i := 0; ; i++ {
		b, err := br.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d batches, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.BaseOffset != want[i].BaseOffset || b.At != want[i].At || !bytes.Equal(b.Bytes, want[i].Bytes) || b.Header != want[i].Header {
			t.Fatalf("batch %d = base %d at %d, want base %d at %d", i, b.BaseOffset, b.At, want[i].BaseOffset, want[i].At)
		}
	}
	if n, off := br.Position(); n != int64(len(data)) || off != want[2].BaseOffset+want[2].Header.Span() {
		t.Fatalf("position %d bytes, offset %d", n, off)
	}

	second := want[1].At
	cases := []struct {
		name  string
		data  []byte
		limit int
		kind  error
		at    int64
	}{
		{"cut in a header", data[:second+20], 0, segments.ErrTruncated, second + 20},
		{"cut in a body", data[:second+70], 0, segments.ErrTruncated, second + 70},
		{"bit flip", flip(data, second+65), 0, segments.ErrChecksum, second + 17},
		{"over the limit", data, 100, segments.ErrTooLarge, 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			br := segments.NewBatchReader(bytes.NewReader(c.data), 0, c.limit)
			var err error
			for err == nil {
				_, err = br.Next()
			}
			var fe *segments.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, c.kind) || fe.At != c.at {
				t.Fatalf("err = %v, want %v at byte %d", err, c.kind, c.at)
			}
		})
	}
}

func flip(b []byte, at int64) []byte {
	c := bytes.Clone(b)
	c[at] ^= 1
	return c
}

// FuzzBatchReader: the streaming batch reader accepts exactly what the
// in-memory walker accepts, batch for batch, and never panics or
// allocates past its limit.
func FuzzBatchReader(f *testing.F) {
	codec := segments.NewCodec()
	for _, c := range allCodecs {
		b, _, _ := codec.AppendBatch(nil, sampleRecords(), segments.BatchOptions{Compression: c})
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var walked []segments.RawBatch
		walkErr := segments.WalkBatches(data, 7, func(b segments.RawBatch) error {
			walked = append(walked, b)
			return nil
		})
		br := segments.NewBatchReader(bytes.NewReader(data), 7, 1<<20)
		for i := 0; ; i++ {
			b, err := br.Next()
			if err != nil {
				if (err == io.EOF) != (walkErr == nil) && len(data) <= 1<<20 {
					t.Fatalf("reader ended with %v after %d batches, walker with %v", err, i, walkErr)
				}
				return
			}
			if i >= len(walked) || !bytes.Equal(b.Bytes, walked[i].Bytes) || b.BaseOffset != walked[i].BaseOffset {
				t.Fatalf("batch %d differs from the walker's", i)
			}
		}
	})
}
