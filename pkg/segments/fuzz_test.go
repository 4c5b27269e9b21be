package segments_test

import (
	"testing"

	"github.com/streambed/streambed/pkg/segments"
)

// FuzzDecodeSlice feeds arbitrary bytes to the batch decoder: it may reject
// them, but never panic, hang or allocate without bound. Whatever decodes
// must re-encode and decode to the same records.
func FuzzDecodeSlice(f *testing.F) {
	codec := segments.NewCodec()
	for _, c := range allCodecs {
		b, _, _ := codec.AppendBatch(nil, sampleRecords(), segments.BatchOptions{Compression: c})
		f.Add(b)
	}
	sparse, _, _ := codec.AppendSparseBatch(nil, 0, 9, []segments.Record{{Offset: 3, Value: []byte("x")}}, segments.BatchOptions{})
	f.Add(sparse)
	f.Add([]byte{})
	small := segments.NewCodec(segments.WithMaxBatchBytes(1 << 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := small.DecodeSlice(data, 100, nil)
		if err != nil {
			return
		}
		if len(recs) == 0 {
			return
		}
		var again []segments.Record
		for i := range recs {
			r := recs[i]
			again = append(again, r)
		}
		enc, _, err := codec.AppendSparseBatch(nil, 100, recs[len(recs)-1].Offset, again, segments.BatchOptions{})
		if err != nil {
			t.Fatalf("decoded records do not re-encode: %v", err)
		}
		back, err := codec.DecodeSlice(enc, 100, nil)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		assertRecords(t, back, recs, 100)
	})
}

// FuzzParseObject: the footer and trailer parsers, and every slice they
// point at, on arbitrary bytes.
func FuzzParseObject(f *testing.F) {
	f.Add(buildObject(f, allCodecs))
	f.Add(buildObject(f, []segments.Compression{segments.CompressionNone}))
	f.Add([]byte("SBSG"))
	small := segments.NewCodec(segments.WithMaxBatchBytes(1 << 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		slices, err := segments.ParseObject(data)
		if err != nil {
			return
		}
		for _, s := range slices {
			if s.Offset < segments.HeaderSize || s.Offset+s.Length > int64(len(data)) {
				t.Fatalf("slice %+v outside a %d-byte object", s, len(data))
			}
			_, _ = small.DecodeSlice(data[s.Offset:s.Offset+s.Length], 0, nil)
		}
	})
}
