package broker

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/dynamolike"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// TestTornDuplicateKeepsObject: a commit whose write times out but lands
// while the retry re-reads, read torn as DynamoDB's BatchGetItem can (the
// index entry before the write landed, the producer state after), decides
// "duplicate". The index entry points at this request's object all the
// same: the object must not be deleted, and the record must stay readable.
func TestTornDuplicateKeepsObject(t *testing.T) {
	ctx := context.Background()
	// Read the index entry first, the producer state after the late
	// write landed.
	dl := lateIndexWrite(func(keys []offsets.Key) []int {
		out := make([]int, len(keys))
		for i := range keys {
			out[i] = len(keys) - 1 - i
		}
		return out
	}, func(k offsets.Key) bool { return strings.HasPrefix(k.SK, "pid#") })
	bucket := membucket.New()
	b := New(offsets.New(dl, offsets.WithRetry(5, time.Millisecond, time.Millisecond)), bucket, Config{})
	if _, err := b.CreateTopic(ctx, "t", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	res, err := b.ProducePartition(ctx, "t", 0, PartitionProduce{
		Records:        []segments.Record{{Timestamp: NoTimestamp, Value: []byte("only copy")}},
		Producer:       &offsets.ProducerID{ID: 7},
		ExpectedOffset: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != 0 {
		t.Fatalf("base %d", res.Base)
	}
	entries, _, err := b.Store().Index(ctx, mustTopic(t, b, "t").ID, 0, 0, 10)
	if err != nil || len(entries) != 1 {
		t.Fatalf("index: %v %v", entries, err)
	}
	// Deleting an object happens in the background: give it time to.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := bucket.GetRange(ctx, entries[0].Object, 0, 1); err != nil {
			t.Fatalf("the object the index points at is gone: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := b.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: 0})
	if err != nil || len(got.Records) != 1 || string(got.Records[0].Value) != "only copy" {
		t.Fatalf("read back: %+v %v", got, err)
	}
}

func mustTopic(t *testing.T, b *Broker, name string) offsets.Topic {
	t.Helper()
	tp, err := b.Topic(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestTornReadDoesNotCommitTwice: a commit's write times out and lands
// while the retry re-reads, torn: the retry reads the index entry the
// first write made before it landed and the head after. It must not
// append the records a second time after themselves.
func TestTornReadDoesNotCommitTwice(t *testing.T) {
	ctx := context.Background()
	// The index entries first; everything else once the late write has
	// landed.
	dl := lateIndexWrite(func(keys []offsets.Key) []int {
		var out, rest []int
		for i, k := range keys {
			switch {
			case strings.HasPrefix(k.SK, "seg#"):
				out = append(out, i)
			case k.SK == "head":
				rest = append([]int{i}, rest...)
			default:
				rest = append(rest, i)
			}
		}
		return append(out, rest...)
	}, func(k offsets.Key) bool { return k.SK == "head" })
	b := New(offsets.New(dl, offsets.WithRetry(5, time.Millisecond, time.Millisecond)), membucket.New(), Config{})
	if _, err := b.CreateTopic(ctx, "t", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	res, err := b.ProducePartition(ctx, "t", 0, PartitionProduce{
		Records:        []segments.Record{{Timestamp: NoTimestamp, Value: []byte("once")}},
		ExpectedOffset: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Partitions(ctx, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != 0 || st[0].LogEnd != 1 {
		t.Fatalf("one record answered at %d; the log ends at %d", res.Base, st[0].LogEnd)
	}
}

// lateIndexWrite is a DynamoDB-like table whose first write of an index
// entry is answered with a timeout and lands only when a torn multi-item
// read (its items read in the order order gives) reaches an item landAt
// picks.
func lateIndexWrite(order func([]offsets.Key) []int, landAt func(offsets.Key) bool) *dynamolike.Table {
	release := make(chan struct{})
	var once sync.Once
	var sent atomic.Bool
	var dl *dynamolike.Table
	dl = dynamolike.New(memtable.New(), dynamolike.Config{
		TornReads: true,
		Script: func(n int64, ops []offsets.Op) dynamolike.Fate {
			for _, op := range ops {
				if strings.HasPrefix(op.Key.SK, "seg#") && !sent.Swap(true) {
					return dynamolike.Fate{Ambiguous: true, Late: true, Release: release}
				}
			}
			return dynamolike.Fate{}
		},
		Order: order,
		BeforeRead: func(k offsets.Key) {
			if landAt(k) && sent.Load() {
				once.Do(func() { close(release); dl.Wait() })
			}
		},
	})
	return dl
}
