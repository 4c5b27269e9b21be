package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/kafkahash"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// TestGrowthReachesStaleBrokers: broker A caches a topic of 4 partitions
// (for longer than any test waits); broker B grows it to 16. Keyed records
// produced through A afterwards all land where Kafka's partitioner puts
// them over 16 partitions: A's commits with the old count are refused and
// partitioned again, so no key gets records on its old partition after the
// increase returned.
func TestGrowthReachesStaleBrokers(t *testing.T) {
	ctx := context.Background()
	store := offsets.New(memtable.New())
	bucket := membucket.New()
	a := New(store, bucket, Config{TopicCacheTTL: time.Hour})
	b := New(store, bucket, Config{})
	if _, err := a.CreateTopic(ctx, "keys", 4, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var recs []ProduceRecord
	for i := range 200 {
		recs = append(recs, rec(fmt.Sprintf("key-%d", i), "before"))
	}
	if _, err := a.Produce(ctx, "keys", recs, ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateTopic(ctx, "keys", ptrTo(int32(16)), nil); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i].Value = []byte("after")
	}
	res, err := a.Produce(ctx, "keys", recs, ProduceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i, r := range res {
		want := kafkahash.Partition(recs[i].Key, 16)
		if r.Err != nil || r.Partition != want {
			t.Fatalf("record %d (%s) after the increase: %+v, Kafka's partitioner says %d", i, recs[i].Key, r, want)
		}
		if want != kafkahash.Partition(recs[i].Key, 4) {
			moved++
		}
	}
	if moved < 100 {
		t.Fatalf("only %d of 200 keys moved: the test does not exercise growth", moved)
	}
}

func ptrTo[T any](v T) *T { return &v }
