package compactor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// BenchmarkMergeSmallRequests writes a workload of many small produce
// requests (10 records of 1 KiB each, spread over 4 partitions), then
// compacts until nothing is left to merge and collects the garbage.
// Reported: MB/s merged (bytes written into merged segments over the
// compaction time), and index entries and objects before and after.
func BenchmarkMergeSmallRequests(b *testing.B) {
	for _, be := range []struct {
		name     string
		backend  backend
		requests int
	}{{"embedded", embedded, 2000}, {"minio+moto", minioMoto, 300}} {
		b.Run(be.name, func(b *testing.B) {
			for b.Loop() {
				benchMerge(b, be.backend, be.requests)
			}
		})
	}
}

func benchMerge(b *testing.B, be backend, requests int) {
	b.StopTimer()
	table, bucket := be(b)
	c := &clock{t: time.Now()}
	store := offsets.New(table, offsets.WithClock(c.now))
	br := broker.New(store, bucket, broker.Config{Now: c.now})
	ctx := context.Background()
	if _, err := br.CreateTopic(ctx, "bench", 4, offsets.DefaultTopicConfig()); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 1024)
	for i := range requests {
		recs := make([]broker.ProduceRecord, 10)
		for j := range recs {
			_, _ = rand.Read(val)
			recs[j] = broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp, Value: append([]byte(nil), val...)}, Partition: int32(i % 4)}
		}
		if _, err := br.Produce(ctx, "bench", recs, broker.ProduceOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	entriesBefore, objectsBefore := counts(b, store, bucket)
	comp := compactor.New(store, bucket, compactor.Config{Now: c.now, MergeMinBytes: 1, MaxMergesPerPartition: 1000, Budget: time.Hour})
	b.StartTimer()
	start := time.Now()
	var merged int64
	for {
		st, err := comp.Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		merged += st.BytesMerged
		if st.EntriesMerged == 0 {
			break
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	c.advance(2 * time.Hour)
	if _, err := comp.Run(ctx); err != nil {
		b.Fatal(err)
	}
	entriesAfter, objectsAfter := counts(b, store, bucket)
	b.ReportMetric(float64(merged)/1e6/elapsed.Seconds(), "MB/s-merged")
	b.ReportMetric(float64(entriesBefore), "entries-before")
	b.ReportMetric(float64(entriesAfter), "entries-after")
	b.ReportMetric(float64(objectsBefore), "objects-before")
	b.ReportMetric(float64(objectsAfter), "objects-after")
	b.StartTimer()
}

func counts(b *testing.B, store *offsets.Store, bucket segments.Bucket) (entries, objects int) {
	rep, err := compactor.Fsck(context.Background(), store, bucket, compactor.FsckOptions{Footers: true})
	if err != nil || !rep.Clean() {
		b.Fatalf("fsck: %v %+v", err, rep)
	}
	return rep.Entries, rep.Objects
}

// BenchmarkReadAmplification writes 200,000 records of 1 KiB to one
// partition in requests of 1000, then makes 200 fetches of 10 records at
// random offsets on one broker, before and after compacting the partition
// into segments. Reported: bytes read from the bucket per fetch, fetch
// latency (p50, p99), and the baseline: a raw ranged read of the same
// number of bytes from the same bucket (p50).
//
//	go test -run '^$' -bench ReadAmplification -benchtime 1x ./pkg/compactor/
func BenchmarkReadAmplification(b *testing.B) {
	for _, be := range []struct {
		name    string
		backend backend
	}{{"embedded", embedded}, {"minio+moto", minioMoto}} {
		b.Run(be.name, func(b *testing.B) {
			for b.Loop() {
				benchReads(b, be.backend)
			}
		})
	}
}

func benchReads(b *testing.B, be backend) {
	b.StopTimer()
	ctx := context.Background()
	table, inner := be(b)
	store := offsets.New(table)
	bucket := faults.WrapBucket(inner, nil)
	br := broker.New(store, bucket, broker.Config{})
	if _, err := br.CreateTopic(ctx, "amp", 1, offsets.DefaultTopicConfig()); err != nil {
		b.Fatal(err)
	}
	const records, perRequest = 200_000, 1000
	rnd := mrand.New(mrand.NewPCG(1, 1))
	val := make([]byte, 1024)
	for i := 0; i < records; i += perRequest {
		recs := make([]segments.Record, perRequest)
		for j := range recs {
			for k := range val {
				val[k] = byte(rnd.Uint32())
			}
			recs[j] = segments.Record{Timestamp: broker.NoTimestamp, Value: bytes.Clone(val)}
		}
		if _, err := br.ProducePartition(ctx, "amp", 0, broker.PartitionProduce{Records: recs, ExpectedOffset: -1}); err != nil {
			b.Fatal(err)
		}
	}
	measure := func(phase string) {
		reader := broker.New(store, bucket, broker.Config{}) // cold caches, then warm over the 200 fetches
		offs := mrand.New(mrand.NewPCG(2, 2))
		start := bucket.Counts()
		var lat []time.Duration
		for range 200 {
			off := offs.Int64N(records - 10)
			t0 := time.Now()
			res, err := reader.Fetch(ctx, broker.FetchRequest{Topic: "amp", Partition: 0, Offset: off, MaxRecords: 10})
			lat = append(lat, time.Since(t0))
			if err != nil || len(res.Records) != 10 || res.Records[0].Offset != off {
				b.Fatalf("fetch at %d: %d records, %v", off, len(res.Records), err)
			}
		}
		end := bucket.Counts()
		perFetch := float64(end.GetBytes-start.GetBytes) / 200
		p50, p99 := pct(lat, 50), pct(lat, 99)
		// Baseline: ranged reads of as many bytes from the bucket itself.
		entries, _, err := store.Index(ctx, mustID(b, br, "amp"), 0, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		var raw []time.Duration
		for i := range 50 {
			e := entries[i%len(entries)]
			n := min(int64(perFetch), e.Length)
			t0 := time.Now()
			if _, err := inner.GetRange(ctx, e.Object, e.Offset, n); err != nil {
				b.Fatal(err)
			}
			raw = append(raw, time.Since(t0))
		}
		rawP50 := pct(raw, 50)
		b.ReportMetric(perFetch, "bytes/fetch-"+phase)
		b.ReportMetric(ms(p50), "p50-ms-"+phase)
		b.ReportMetric(ms(p99), "p99-ms-"+phase)
		b.ReportMetric(ms(rawP50), "raw-read-p50-ms-"+phase)
		b.ReportMetric(float64(len(entries)), "entries-"+phase)
	}
	b.StartTimer()
	measure("before")
	c := compactor.New(store, bucket, compactor.Config{MergeMinBytes: 1, MaxMergesPerPartition: 1000, Budget: time.Hour})
	for {
		st, err := c.Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.EntriesMerged == 0 {
			break
		}
	}
	measure("after")
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mustID(b *testing.B, br *broker.Broker, topic string) string {
	t, err := br.Topic(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	return t.ID
}
