package compactor_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

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
