package kafkaapi

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
)

// handleProduce stores each partition's batches as the client encoded them
// (validated first), one topic per concurrent call so that they share the
// broker's group commit. Every acks level is answered only once the
// records are durable; acks=0 is answered with nothing.
func handleProduce(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := kmsg.NewPtrProduceResponse()
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	// A pipelined request has queued its records once every topic has
	// (or has failed without).
	var queuedAll sync.WaitGroup
	queuedAll.Add(len(req.Topics))
	requestQueued := broker.QueuedCallback(ctx)
	go func() { queuedAll.Wait(); requestQueued() }()
	var wg sync.WaitGroup
	for i := range req.Topics {
		rt := &req.Topics[i]
		out := &resp.Topics[i]
		*out = kmsg.NewProduceResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		fail := func(code int16, msg *string) {
			for j, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition, p.ErrorCode, p.ErrorMessage, p.BaseOffset = rp.Partition, code, msg, -1
				out.Partitions[j] = p
			}
		}
		if !c.may(auth.Produce, auth.Topic, rt.Topic) {
			fail(kerr.TopicAuthorizationFailed.Code, nil)
			queuedAll.Done()
			continue
		}
		var once sync.Once
		topicQueued := func() { once.Do(queuedAll.Done) }
		wg.Go(func() {
			defer topicQueued()
			ctx := broker.WithQueued(ctx, topicQueued)
			parts := make([]broker.BatchProduce, len(rt.Partitions))
			for j, rp := range rt.Partitions {
				parts[j] = broker.BatchProduce{Partition: rp.Partition, Batches: rp.Records}
			}
			res, err := c.s.b.ProduceBatches(ctx, rt.Topic, parts)
			if err != nil {
				fail(errorCode(err), errorMessage(err))
				return
			}
			for j, r := range res {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition, p.LogAppendTime, p.LogStartOffset = r.Partition, r.AppendTime, r.LogStart
				p.BaseOffset = r.Base
				if r.Err != nil {
					p.ErrorCode, p.ErrorMessage, p.BaseOffset = errorCode(r.Err), errorMessage(r.Err), -1
				}
				out.Partitions[j] = p
			}
		})
	}
	wg.Wait()
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}
