package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/kafkahash"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

type fixture struct {
	b     *Broker
	ctx   context.Context
	clock time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), clock: time.UnixMilli(1_700_000_000_000)}
	now := func() time.Time { return f.clock }
	store := offsets.New(memtable.New(), offsets.WithClock(now))
	f.b = New(store, membucket.New(), Config{Now: now, PollMin: 5 * time.Millisecond, PollMax: 20 * time.Millisecond})
	return f
}

func (f *fixture) topic(t *testing.T, name string, parts int32, mod ...func(*offsets.TopicConfig)) {
	t.Helper()
	cfg := offsets.DefaultTopicConfig()
	for _, m := range mod {
		m(&cfg)
	}
	if _, err := f.b.CreateTopic(f.ctx, name, parts, cfg); err != nil {
		t.Fatal(err)
	}
}

func rec(key, value string) ProduceRecord {
	r := ProduceRecord{Record: segments.Record{Timestamp: NoTimestamp, Value: []byte(value)}, Partition: NoPartition}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

func TestProduceFetchRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "orders", 4)
	var recs []ProduceRecord
	for i := range 40 {
		recs = append(recs, rec(fmt.Sprintf("user-%d", i%7), fmt.Sprintf("order-%d", i)))
	}
	res, err := f.b.Produce(f.ctx, "orders", recs, ProduceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perPart := map[int32][]string{}
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if want := kafkahash.Partition(recs[i].Key, 4); r.Partition != want {
			t.Fatalf("record %d on partition %d, Kafka's partitioner says %d", i, r.Partition, want)
		}
		if r.Offset != int64(len(perPart[r.Partition])) {
			t.Fatalf("record %d offset %d, want %d (dense, in request order)", i, r.Offset, len(perPart[r.Partition]))
		}
		if r.Timestamp != f.clock.UnixMilli() {
			t.Fatalf("timestamp %d", r.Timestamp)
		}
		perPart[r.Partition] = append(perPart[r.Partition], string(recs[i].Value))
	}
	for p, want := range perPart {
		got, err := f.b.Fetch(f.ctx, FetchRequest{Topic: "orders", Partition: p, Offset: 0})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Records) != len(want) || got.NextOffset != int64(len(want)) || got.LogEnd != int64(len(want)) {
			t.Fatalf("partition %d: %d records next %d", p, len(got.Records), got.NextOffset)
		}
		for i, r := range got.Records {
			if string(r.Value) != want[i] || r.Offset != int64(i) {
				t.Fatalf("partition %d record %d = %q@%d", p, i, r.Value, r.Offset)
			}
		}
	}
	// One object for the whole request.
	n := 0
	for _, err := range f.b.Bucket().List(f.ctx, "", "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d objects for one request", n)
	}
}

func TestUnkeyedRecordsAreStickyPerRequest(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "sticky", 8)
	res, err := f.b.Produce(f.ctx, "sticky", []ProduceRecord{rec("", "a"), rec("", "b"), rec("", "c")}, ProduceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Partition != res[1].Partition || res[1].Partition != res[2].Partition || res[2].Offset != 2 {
		t.Fatalf("unkeyed records split: %+v", res)
	}
	explicit := rec("", "x")
	explicit.Partition = 5
	res, _ = f.b.Produce(f.ctx, "sticky", []ProduceRecord{explicit}, ProduceOptions{})
	if res[0].Partition != 5 {
		t.Fatalf("explicit partition ignored: %+v", res)
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "idem", 3)
	recs := []ProduceRecord{rec("k1", "a"), rec("k2", "b"), rec("", "c")}
	first, err := f.b.Produce(f.ctx, "idem", recs, ProduceOptions{IdempotencyKey: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.b.Produce(f.ctx, "idem", recs, ProduceOptions{IdempotencyKey: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if again[i].Err != nil || again[i].Partition != first[i].Partition || again[i].Offset != first[i].Offset {
			t.Fatalf("retry of record %d: %+v, first %+v", i, again[i], first[i])
		}
	}
	st, _ := f.b.Partitions(f.ctx, "idem")
	total := int64(0)
	for _, s := range st {
		total += s.LogEnd
	}
	if total != 3 {
		t.Fatalf("log holds %d records after a retried request of 3", total)
	}
	other, _ := f.b.Produce(f.ctx, "idem", recs, ProduceOptions{IdempotencyKey: "req-2"})
	if other[0].Err != nil || other[0].Offset == first[0].Offset && other[0].Partition == first[0].Partition {
		t.Fatalf("another key was treated as a duplicate: %+v", other[0])
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "strict", 2, func(c *offsets.TopicConfig) { c.MaxRecordBytes = 100 })
	big := rec("k", strings.Repeat("x", 200))
	future := rec("k", "v")
	future.Timestamp = f.clock.Add(2 * time.Hour).UnixMilli()
	negative := rec("k", "v")
	negative.Timestamp = -5
	badHeader := rec("k", "v")
	badHeader.Headers = []segments.Header{{Key: "", Value: []byte("x")}}
	badPart := rec("k", "v")
	badPart.Partition = 9
	many := make([]ProduceRecord, 1001)
	for i := range many {
		many[i] = rec("", "x")
	}
	cases := []struct {
		recs  []ProduceRecord
		field string
		err   error
	}{
		{nil, "records", offsets.ErrInvalid},
		{many, "records", ErrTooManyRecords},
		{[]ProduceRecord{rec("k", "ok"), big}, "records[1]", ErrRecordTooLarge},
		{[]ProduceRecord{future}, "records[0].timestamp", offsets.ErrInvalid},
		{[]ProduceRecord{negative}, "records[0].timestamp", offsets.ErrInvalid},
		{[]ProduceRecord{badHeader}, "records[0].headers[0].name", offsets.ErrInvalid},
		{[]ProduceRecord{badPart}, "records[0].partition", offsets.ErrUnknownPartition},
	}
	for i, c := range cases {
		_, err := f.b.Produce(f.ctx, "strict", c.recs, ProduceOptions{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, c.err) {
			t.Errorf("case %d: err = %v, want field %s and %v", i, err, c.field, c.err)
		}
	}
	st, _ := f.b.Partitions(f.ctx, "strict")
	if st[0].LogEnd+st[1].LogEnd != 0 {
		t.Fatal("bad input appended records")
	}
	for _, err := range f.b.Bucket().List(f.ctx, "", "") {
		t.Fatalf("bad input wrote an object (%v)", err)
	}
	if _, err := f.b.Produce(f.ctx, "missing", []ProduceRecord{rec("", "x")}, ProduceOptions{}); !errors.Is(err, offsets.ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func TestFetchBudgetsAndRange(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "budget", 1)
	for range 5 {
		var recs []ProduceRecord
		for range 10 {
			recs = append(recs, rec("", strings.Repeat("v", 100)))
		}
		if _, err := f.b.Produce(f.ctx, "budget", recs, ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.b.Fetch(f.ctx, FetchRequest{Topic: "budget", Offset: 7, MaxRecords: 12})
	if err != nil || len(got.Records) != 12 || got.Records[0].Offset != 7 || got.NextOffset != 19 {
		t.Fatalf("max records: %d records from %v next %d err %v", len(got.Records), got.Records[0].Offset, got.NextOffset, err)
	}
	got, _ = f.b.Fetch(f.ctx, FetchRequest{Topic: "budget", Offset: 0, MaxBytes: 350})
	if len(got.Records) != 3 {
		t.Fatalf("max bytes 350 of ~116-byte records: %d records", len(got.Records))
	}
	got, _ = f.b.Fetch(f.ctx, FetchRequest{Topic: "budget", Offset: 0, MaxBytes: 1})
	if len(got.Records) != 1 {
		t.Fatalf("at least one record must come back: %d", len(got.Records))
	}
	for _, off := range []int64{-1, 51} {
		_, err := f.b.Fetch(f.ctx, FetchRequest{Topic: "budget", Offset: off})
		var oe *OffsetOutOfRangeError
		if !errors.As(err, &oe) || oe.LogStart != 0 || oe.LogEnd != 50 {
			t.Fatalf("offset %d: %v", off, err)
		}
	}
	got, err = f.b.Fetch(f.ctx, FetchRequest{Topic: "budget", Offset: 50})
	if err != nil || len(got.Records) != 0 || got.NextOffset != 50 {
		t.Fatalf("at the log end: %+v %v", got, err)
	}
	if _, err := f.b.Fetch(f.ctx, FetchRequest{Topic: "budget", Partition: 3}); !errors.Is(err, offsets.ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
}

func TestLongPollWakesOnAppend(t *testing.T) {
	f := newFixture(t)
	f.b.now = time.Now
	f.topic(t, "tail", 1)
	done := make(chan FetchResult)
	go func() {
		res, err := f.b.Fetch(f.ctx, FetchRequest{Topic: "tail", Offset: 0, Wait: 10 * time.Second})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := f.b.Produce(f.ctx, "tail", []ProduceRecord{rec("", "hello")}, ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if len(res.Records) != 1 || string(res.Records[0].Value) != "hello" {
			t.Fatalf("long poll got %+v", res)
		}
		t.Logf("woken %v after the append", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not wake on the append")
	}
	// Draining ends a waiting poll at once.
	go func() { time.Sleep(30 * time.Millisecond); f.b.Drain() }()
	start = time.Now()
	res, err := f.b.Fetch(f.ctx, FetchRequest{Topic: "tail", Offset: 1, Wait: 10 * time.Second})
	if err != nil || len(res.Records) != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("drain: %+v %v after %v", res, err, time.Since(start))
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "times", 1)
	for _, ts := range []int64{1000, 2000, 1500, 3000} {
		r := rec("", "v")
		r.Timestamp = ts
		if _, err := f.b.Produce(f.ctx, "times", []ProduceRecord{r}, ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		ts, off int64
		found   bool
	}{{0, 0, true}, {1000, 0, true}, {1001, 1, true}, {2500, 3, true}, {3001, 4, false}} {
		off, _, found, _, err := f.b.OffsetForTimestamp(f.ctx, "times", 0, c.ts)
		if err != nil || off != c.off || found != c.found {
			t.Errorf("ts %d: offset %d found %v err %v, want %d %v", c.ts, off, found, err, c.off, c.found)
		}
	}
}

func TestPartitionProduce(t *testing.T) {
	f := newFixture(t)
	f.topic(t, "atomic", 2)
	recs := []segments.Record{{Timestamp: NoTimestamp, Value: []byte("a")}, {Timestamp: NoTimestamp, Value: []byte("b")}}
	res, err := f.b.ProducePartition(f.ctx, "atomic", 1, PartitionProduce{Records: recs, Producer: &offsets.ProducerID{ID: 5}, ExpectedOffset: 0})
	if err != nil || res.Base != 0 || res.Last != 1 || res.Duplicate {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = f.b.ProducePartition(f.ctx, "atomic", 1, PartitionProduce{Records: recs, Producer: &offsets.ProducerID{ID: 5}, ExpectedOffset: 0})
	if err != nil || !res.Duplicate || res.Base != 0 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	_, err = f.b.ProducePartition(f.ctx, "atomic", 1, PartitionProduce{Records: recs, ExpectedOffset: 0})
	var om *offsets.OffsetMismatchError
	if !errors.As(err, &om) || om.LogEnd != 2 {
		t.Fatalf("stale expected offset: %v", err)
	}
	// Nothing referenced the refused request's object: it was deleted.
	time.Sleep(50 * time.Millisecond)
	n := 0
	for range f.b.Bucket().List(f.ctx, "", "") {
		n++
	}
	if n != 1 {
		t.Fatalf("%d objects, want 1 (duplicate and refused uploads removed)", n)
	}
}
