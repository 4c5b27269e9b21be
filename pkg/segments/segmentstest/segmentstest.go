// Package segmentstest is the acceptance suite every segments.Bucket adapter
// must pass. An adapter's tests call Run with a factory that returns a new,
// empty bucket for each subtest.
package segmentstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/segments"
)

// Factory returns a new, empty bucket. Adapters that page their listings
// should use a small page size (a few keys) so pagination is exercised.
type Factory func(t *testing.T) segments.Bucket

// Run runs the acceptance suite.
func Run(t *testing.T, newBucket Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, segments.Bucket)
	}{
		{"PutGetStat", testPutGetStat},
		{"CreateOnly", testCreateOnly},
		{"ConcurrentCreators", testConcurrentCreators},
		{"Ranges", testRanges},
		{"Missing", testMissing},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"ListOrderAndPages", testList},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"CanceledContext", testCanceled},
		{"SegmentRoundTrip", testSegmentRoundTrip},
		{"StreamedReads", testStreamedReads},
		{"StreamedPuts", testStreamedPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newBucket(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func mustPut(t *testing.T, b segments.Bucket, key string, body []byte) {
	t.Helper()
	if err := b.Put(ctx(t), key, body); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, b segments.Bucket, key string, off, n int64) []byte {
	t.Helper()
	got, err := b.GetRange(ctx(t), key, off, n)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, n, err)
	}
	return got
}

func testPutGetStat(t *testing.T, b segments.Bucket) {
	body := randomBytes(1000)
	before := time.Now().Add(-time.Minute)
	mustPut(t, b, "l0/ab/obj-1", body)
	if got := mustGet(t, b, "l0/ab/obj-1", 0, -1); !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(body))
	}
	info, err := b.Stat(ctx(t), "l0/ab/obj-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "l0/ab/obj-1" || info.Size != 1000 {
		t.Fatalf("Stat = %+v, want key l0/ab/obj-1 size 1000", info)
	}
	if info.Modified.Before(before) || info.Modified.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Stat modified %v is not about now", info.Modified)
	}
}

func testCreateOnly(t *testing.T, b segments.Bucket) {
	first := []byte("first")
	mustPut(t, b, "k", first)
	err := b.Put(ctx(t), "k", []byte("second, longer body"))
	if !errors.Is(err, segments.ErrAlreadyExists) {
		t.Fatalf("second Put = %v, want ErrAlreadyExists", err)
	}
	if got := mustGet(t, b, "k", 0, -1); !bytes.Equal(got, first) {
		t.Fatalf("object changed by a refused Put: %q", got)
	}
}

func testConcurrentCreators(t *testing.T, b segments.Bucket) {
	const creators = 16
	for round := range 3 {
		key := fmt.Sprintf("race/%d", round)
		var wg sync.WaitGroup
		errs := make([]error, creators)
		bodies := make([][]byte, creators)
		start := make(chan struct{})
		for i := range creators {
			bodies[i] = randomBytes(4096 + i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = b.Put(ctx(t), key, bodies[i])
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: creators %d and %d both won", round, winner, i)
				}
				winner = i
			case !errors.Is(err, segments.ErrAlreadyExists):
				t.Fatalf("round %d: creator %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no creator won", round)
		}
		if got := mustGet(t, b, key, 0, -1); !bytes.Equal(got, bodies[winner]) {
			t.Fatalf("round %d: stored object is not the winner's", round)
		}
	}
}

func testRanges(t *testing.T, b segments.Bucket) {
	body := randomBytes(100)
	mustPut(t, b, "r", body)
	cases := []struct {
		off, n int64
		want   []byte
	}{
		{0, 1, body[:1]},
		{0, 100, body},
		{0, 1000, body},
		{0, -1, body},
		{10, 20, body[10:30]},
		{10, -1, body[10:]},
		{99, 1, body[99:]},
		{99, 50, body[99:]},
		{99, -1, body[99:]},
	}
	for _, c := range cases {
		if got := mustGet(t, b, "r", c.off, c.n); !bytes.Equal(got, c.want) {
			t.Errorf("GetRange(%d, %d) = %d bytes, want %d", c.off, c.n, len(got), len(c.want))
		}
	}
	for _, c := range [][2]int64{{100, 1}, {100, -1}, {150, 10}, {-1, 5}} {
		if _, err := b.GetRange(ctx(t), "r", c[0], c[1]); !errors.Is(err, segments.ErrInvalidRange) {
			t.Errorf("GetRange(%d, %d) = %v, want ErrInvalidRange", c[0], c[1], err)
		}
	}
}

func testMissing(t *testing.T, b segments.Bucket) {
	if _, err := b.GetRange(ctx(t), "nope/x", 0, -1); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("GetRange missing = %v, want ErrNotFound", err)
	}
	if _, err := b.GetRange(ctx(t), "nope/x", 5, 10); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("ranged GetRange missing = %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx(t), "nope/x"); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("Stat missing = %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx(t), "nope/x"); err != nil {
		t.Errorf("Delete missing = %v, want nil", err)
	}
}

func testEmptyObject(t *testing.T, b segments.Bucket) {
	mustPut(t, b, "empty", nil)
	if got := mustGet(t, b, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read %d bytes", len(got))
	}
	if info, err := b.Stat(ctx(t), "empty"); err != nil || info.Size != 0 {
		t.Fatalf("Stat empty = %+v, %v", info, err)
	}
}

func testLargeObject(t *testing.T, b segments.Bucket) {
	const size = 17 << 20
	body := randomBytes(size)
	mustPut(t, b, "large/seg", body)
	if got := mustGet(t, b, "large/seg", 0, -1); !bytes.Equal(got, body) {
		t.Fatalf("large object read back differs (%d bytes)", len(got))
	}
	for _, r := range [][2]int64{{size - 1, 1}, {size - 4096, 4096}, {8 << 20, 1 << 20}, {size / 3, 12345}} {
		if got := mustGet(t, b, "large/seg", r[0], r[1]); !bytes.Equal(got, body[r[0]:r[0]+r[1]]) {
			t.Fatalf("large GetRange(%d, %d) differs", r[0], r[1])
		}
	}
	if info, err := b.Stat(ctx(t), "large/seg"); err != nil || info.Size != size {
		t.Fatalf("Stat large = %+v, %v", info, err)
	}
}

func listKeys(t *testing.T, b segments.Bucket, prefix, startAfter string) []string {
	t.Helper()
	var keys []string
	for info, err := range b.List(ctx(t), prefix, startAfter) {
		if err != nil {
			t.Fatalf("List(%q, %q): %v", prefix, startAfter, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func testList(t *testing.T, b segments.Bucket) {
	// Byte order across separators: "a-b" < "a/c" < "a0" (0x2d < 0x2f < 0x30).
	keys := []string{"a0", "a/c", "a-b", "a/b/d", "b/x/y", "b/x/z"}
	for i := range 25 {
		keys = append(keys, fmt.Sprintf("p/%02d", i))
	}
	for _, k := range keys {
		mustPut(t, b, k, []byte(k))
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := listKeys(t, b, "", ""); !slices.Equal(got, want) {
		t.Fatalf("List all =\n%q\nwant\n%q", got, want)
	}
	if got, w := listKeys(t, b, "a", ""), []string{"a-b", "a/b/d", "a/c", "a0"}; !slices.Equal(got, w) {
		t.Fatalf("List(a) = %q, want %q", got, w)
	}
	if got, w := listKeys(t, b, "a/", ""), []string{"a/b/d", "a/c"}; !slices.Equal(got, w) {
		t.Fatalf("List(a/) = %q, want %q", got, w)
	}
	var wantP []string
	for i := 13; i < 25; i++ {
		wantP = append(wantP, fmt.Sprintf("p/%02d", i))
	}
	if got := listKeys(t, b, "p/", "p/12"); !slices.Equal(got, wantP) {
		t.Fatalf("List(p/, after p/12) = %q, want %q", got, wantP)
	}
	if got := listKeys(t, b, "zz", ""); len(got) != 0 {
		t.Fatalf("List(zz) = %q, want none", got)
	}
	// Stopping early must not hang or error.
	n := 0
	for _, err := range b.List(ctx(t), "p/", "") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	for info, err := range b.List(ctx(t), "b/x/y", "") {
		if err != nil || info.Size != int64(len("b/x/y")) {
			t.Fatalf("List info = %+v, %v", info, err)
		}
	}
}

func testDelete(t *testing.T, b segments.Bucket) {
	mustPut(t, b, "d/1", []byte("one"))
	mustPut(t, b, "d/2", []byte("two"))
	if err := b.Delete(ctx(t), "d/1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx(t), "d/1"); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	if _, err := b.Stat(ctx(t), "d/1"); !errors.Is(err, segments.ErrNotFound) {
		t.Fatalf("Stat after Delete = %v", err)
	}
	if got := listKeys(t, b, "d/", ""); !slices.Equal(got, []string{"d/2"}) {
		t.Fatalf("List after Delete = %q", got)
	}
	mustPut(t, b, "d/1", []byte("again"))
	if got := mustGet(t, b, "d/1", 0, -1); string(got) != "again" {
		t.Fatalf("re-created object = %q", got)
	}
}

func testInvalidKeys(t *testing.T, b segments.Bucket) {
	for _, k := range []string{"", "/a", "a/", "a//b", "a/../b", "./a", "a b", "a\x00b", string(make([]byte, 1025))} {
		if err := b.Put(ctx(t), k, []byte("x")); !errors.Is(err, segments.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func testCanceled(t *testing.T, b segments.Bucket) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Put(c, "c", []byte("x")); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	if _, err := b.Stat(ctx(t), "c"); !errors.Is(err, segments.ErrNotFound) {
		t.Fatalf("a canceled Put left an object: %v", err)
	}
}

// testSegmentRoundTrip stores a real segment object and reads one slice back
// by range and the footer alone, the way the broker does.
func testSegmentRoundTrip(t *testing.T, b segments.Bucket) {
	codec := segments.NewCodec()
	w := segments.NewObjectWriter(0)
	want := map[int32][]segments.Record{}
	for p := range int32(3) {
		recs := make([]segments.Record, 5)
		for i := range recs {
			recs[i] = segments.Record{Timestamp: 1700000000000 + int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: randomBytes(100)}
		}
		want[p] = recs
		if err := w.BeginSlice("topic-id", p); err != nil {
			t.Fatal(err)
		}
		buf, st, err := codec.AppendBatch(w.Buffer(), recs, segments.BatchOptions{Compression: segments.CompressionZstd})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.EndSlice(buf, segments.SliceInfo{BaseOffset: -1, Records: int64(st.Records), LastDelta: st.Span - 1, MinTimestamp: st.MinTimestamp, MaxTimestamp: st.MaxTimestamp}); err != nil {
			t.Fatal(err)
		}
	}
	obj, slices, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "seg/obj", obj)
	footer, err := segments.ReadFooter(ctx(t), b, "seg/obj")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(footer) != fmt.Sprint(slices) {
		t.Fatalf("footer read back = %+v, want %+v", footer, slices)
	}
	s := footer[1]
	data := mustGet(t, b, "seg/obj", s.Offset, s.Length)
	recs, err := codec.DecodeSlice(data, 500, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[0].Offset != 500 || recs[4].Offset != 504 || !bytes.Equal(recs[3].Value, want[1][3].Value) {
		t.Fatalf("decoded slice = %d records, first offset %d", len(recs), recs[0].Offset)
	}
}

// testStreamedReads: Reader streams exactly the ranges GetRange reads,
// refuses the same ranges, and may be closed early.
func testStreamedReads(t *testing.T, b segments.Bucket) {
	body := randomBytes(3<<20 + 17)
	mustPut(t, b, "s/obj", body)
	read := func(off, n int64) ([]byte, error) {
		r, err := b.Reader(ctx(t), "s/obj", off, n)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	for _, c := range [][2]int64{{0, -1}, {0, 1}, {5, 100}, {1 << 20, 1 << 20}, {3<<20 + 16, -1}, {3<<20 + 16, 10}, {100, 1 << 30}} {
		got, err := read(c[0], c[1])
		if err != nil {
			t.Fatalf("Reader(%d, %d): %v", c[0], c[1], err)
		}
		if want := mustGet(t, b, "s/obj", c[0], c[1]); !bytes.Equal(got, want) {
			t.Fatalf("Reader(%d, %d) streamed %d bytes, GetRange reads %d", c[0], c[1], len(got), len(want))
		}
	}
	for _, c := range [][2]int64{{int64(len(body)), 1}, {-1, 5}} {
		if _, err := read(c[0], c[1]); !errors.Is(err, segments.ErrInvalidRange) {
			t.Errorf("Reader(%d, %d) = %v, want ErrInvalidRange", c[0], c[1], err)
		}
	}
	if _, err := b.Reader(ctx(t), "s/missing", 0, -1); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("Reader of a missing key = %v, want ErrNotFound", err)
	}
	// Closing early is fine and frees the stream.
	r, err := b.Reader(ctx(t), "s/obj", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, body[:10]) {
		t.Fatalf("first bytes: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("early Close: %v", err)
	}
}

// testStreamedPuts: PutStream stores exactly size bytes create-only, in
// one piece or (for large objects) in parts, of a known or unknown size;
// a body that is too short, too long or fails stores nothing.
func testStreamedPuts(t *testing.T, b segments.Bucket) {
	for _, size := range []int{0, 1000, 9<<20 + 123} {
		body := randomBytes(size)
		key := fmt.Sprintf("stream/%d", size)
		if err := b.PutStream(ctx(t), key, int64(size), bytes.NewReader(body)); err != nil {
			t.Fatalf("PutStream of %d bytes: %v", size, err)
		}
		if got := mustGet(t, b, key, 0, -1); !bytes.Equal(got, body) {
			t.Fatalf("PutStream of %d bytes read back %d different bytes", size, len(got))
		}
		if err := b.PutStream(ctx(t), key, int64(size), bytes.NewReader(body)); !errors.Is(err, segments.ErrAlreadyExists) {
			t.Fatalf("second PutStream of %d bytes = %v, want ErrAlreadyExists", size, err)
		}
		// Of unknown size, read in small pieces (as from a pipe).
		key += "-unsized"
		if err := b.PutStream(ctx(t), key, -1, &trickle{data: body}); err != nil {
			t.Fatalf("PutStream of %d bytes of unknown size: %v", size, err)
		}
		if got := mustGet(t, b, key, 0, -1); !bytes.Equal(got, body) {
			t.Fatalf("PutStream of %d bytes of unknown size read back %d different bytes", size, len(got))
		}
		if err := b.PutStream(ctx(t), key, -1, bytes.NewReader(body)); !errors.Is(err, segments.ErrAlreadyExists) {
			t.Fatalf("second PutStream of %d bytes of unknown size = %v, want ErrAlreadyExists", size, err)
		}
	}
	for _, n := range []int{10, 9 << 20} {
		key := fmt.Sprintf("stream/failing-%d", n)
		failing := io.MultiReader(bytes.NewReader(randomBytes(n)), iotestErr{})
		if err := b.PutStream(ctx(t), key, -1, failing); err == nil {
			t.Errorf("a body failing after %d bytes was stored", n)
		}
		if _, err := b.Stat(ctx(t), key); !errors.Is(err, segments.ErrNotFound) {
			t.Errorf("a body failing after %d bytes left an object: %v", n, err)
		}
	}
	for _, c := range []struct {
		name       string
		size, body int
	}{{"short", 1000, 999}, {"long", 1000, 1001}, {"short large", 9 << 20, 8<<20 + 1}, {"long large", 9 << 20, 9<<20 + 1}} {
		key := "stream/bad-" + strings.ReplaceAll(c.name, " ", "-")
		err := b.PutStream(ctx(t), key, int64(c.size), bytes.NewReader(randomBytes(c.body)))
		if !errors.Is(err, segments.ErrBodySize) {
			t.Errorf("%s body: %v, want ErrBodySize", c.name, err)
		}
		if _, err := b.Stat(ctx(t), key); !errors.Is(err, segments.ErrNotFound) {
			t.Errorf("%s body left an object: %v", c.name, err)
		}
	}
}

// trickle reads its data a few KiB at a time.
type trickle struct{ data []byte }

func (t *trickle) Read(p []byte) (int, error) {
	if len(t.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 3000)], t.data)
	t.data = t.data[n:]
	return n, nil
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("the writer failed") }
