package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/kafkahash"
)

// TestProducerLearnsPartitionIncrease: a producer created when the topic
// had 4 partitions switches to 16 within one request after the increase
// (every answer carries the count), without waiting for its metadata age.
func TestProducerLearnsPartitionIncrease(t *testing.T) {
	ctx := context.Background()
	c, err := client.New(memServer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, "grow", 4, nil); err != nil {
		t.Fatal(err)
	}
	var got []client.Delivery
	var keys [][]byte
	p, err := c.NewProducer(ctx, "grow", client.WithLinger(time.Millisecond), client.WithMetadataMaxAge(time.Hour),
		client.WithDeliveryCallback(func(r client.Record, d client.Delivery, err error) {
			if err == nil {
				got = append(got, d)
				keys = append(keys, r.Key)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	n := int32(16)
	if _, err := c.UpdateTopic(ctx, "grow", &n, nil); err != nil {
		t.Fatal(err)
	}
	// The first request after the increase still uses 4 partitions (as
	// Kafka's producer does with records it already partitioned)...
	p.Produce(ctx, client.Record{Key: []byte("first"), Value: []byte("x")})
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// ...and its answer teaches the producer the new count.
	got, keys = nil, nil
	for i := range 200 {
		p.Produce(ctx, client.Record{Key: fmt.Appendf(nil, "key-%d", i), Value: []byte("y")})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 {
		t.Fatalf("%d of 200 delivered", len(got))
	}
	for i, d := range got {
		if want := kafkahash.Partition(keys[i], 16); d.Partition != want {
			t.Fatalf("%s went to partition %d, Kafka's partitioner over 16 says %d", keys[i], d.Partition, want)
		}
	}
}
