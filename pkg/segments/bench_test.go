package segments_test

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/streambed/streambed/pkg/segments"
)

// benchRecords returns n 1 KiB records whose values are half random, half
// repetitive JSON-ish text, so compression ratios are realistic rather than
// best or worst case.
func benchRecords(n int) ([]segments.Record, int) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	recs := make([]segments.Record, n)
	total := 0
	for i := range recs {
		v := make([]byte, 1024)
		_, _ = rand.Read(v[:512])
		copy(v[512:], fmt.Sprintf(`{"user":"user-%06d","event":"page_view","path":"/products/%d","ok":true}`, rng.IntN(10000), i))
		recs[i] = segments.Record{Timestamp: 1700000000000 + int64(i), Key: fmt.Appendf(nil, "user-%06d", rng.IntN(10000)), Value: v}
		total += len(recs[i].Key) + len(v)
	}
	return recs, total
}

// BenchmarkEncodeSegment: one 1000-record batch per partition for 4
// partitions (a large produce request), encoded into an object. MB/s counts
// record payload bytes.
func BenchmarkEncodeSegment(b *testing.B) {
	recs, payload := benchRecords(1000)
	for _, c := range []segments.Compression{segments.CompressionNone, segments.CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			codec := segments.NewCodec()
			b.SetBytes(int64(4 * payload))
			b.ReportAllocs()
			for b.Loop() {
				w := segments.NewObjectWriter(4 * segments.EstimateBatchSize(recs))
				for p := range int32(4) {
					_ = w.BeginSlice("topic", p)
					buf, st, err := codec.AppendBatch(w.Buffer(), recs, segments.BatchOptions{Compression: c})
					if err != nil {
						b.Fatal(err)
					}
					_ = w.EndSlice(buf, segments.SliceInfo{Records: int64(st.Records), LastDelta: st.Span - 1})
				}
				if _, _, err := w.Finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeSegment: parse the footer and decode every slice.
func BenchmarkDecodeSegment(b *testing.B) {
	recs, payload := benchRecords(1000)
	for _, c := range []segments.Compression{segments.CompressionNone, segments.CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			codec := segments.NewCodec()
			w := segments.NewObjectWriter(0)
			for p := range int32(4) {
				_ = w.BeginSlice("topic", p)
				buf, st, _ := codec.AppendBatch(w.Buffer(), recs, segments.BatchOptions{Compression: c})
				_ = w.EndSlice(buf, segments.SliceInfo{Records: int64(st.Records), LastDelta: st.Span - 1})
			}
			obj, _, _ := w.Finish()
			b.ReportMetric(float64(len(obj))/float64(4*payload), "stored/payload")
			b.SetBytes(int64(4 * payload))
			b.ReportAllocs()
			out := make([]segments.Record, 0, 1000)
			for b.Loop() {
				slices, err := segments.ParseObject(obj)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range slices {
					out, err = codec.DecodeSlice(obj[s.Offset:s.Offset+s.Length], 0, out[:0])
					if err != nil || len(out) != 1000 {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
