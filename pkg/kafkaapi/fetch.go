package kafkaapi

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
)

// maxFetchBytes bounds one Fetch response, whatever the client asks (its
// fetch.max.bytes defaults to 50 MiB): a client asks again for the rest.
const maxFetchBytes = 16 << 20

// handleFetch serves stored batches as they are, base offsets patched,
// from the batch that holds each fetch offset; the high watermark and the
// last stable offset are the log end. Fetch sessions are not kept (session
// id 0: every fetch is a full one).
func handleFetch(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	resp := kmsg.NewPtrFetchResponse()
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	type at struct{ t, p int }
	var reqs []broker.BatchFetch
	var where []at
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewFetchResponseTopic()
		out.Topic, out.TopicID = rt.Topic, rt.TopicID
		out.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		allowed := c.may(auth.Consume, auth.Topic, rt.Topic)
		for j, rp := range rt.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
			// Empty, never null: librdkafka refuses a null record set.
			p.RecordBatches = []byte{}
			if !allowed {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			out.Partitions[j] = p
			if allowed {
				reqs = append(reqs, broker.BatchFetch{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.FetchOffset, MaxBytes: int(max(rp.PartitionMaxBytes, 1))})
				where = append(where, at{i, j})
			}
		}
	}
	maxBytes := maxFetchBytes
	if req.Version >= 3 && req.MaxBytes > 0 {
		maxBytes = min(int(req.MaxBytes), maxFetchBytes)
	}
	wait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	for k, r := range c.s.b.FetchBatches(ctx, reqs, maxBytes, int(req.MinBytes), wait) {
		p := &resp.Topics[where[k].t].Partitions[where[k].p]
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = r.HighWatermark, r.HighWatermark, r.LogStart
		if r.Records != nil {
			p.RecordBatches = r.Records
		}
		if r.Err != nil {
			p.ErrorCode = errorCode(r.Err)
			var oor *broker.OffsetOutOfRangeError
			if errors.As(r.Err, &oor) {
				p.HighWatermark, p.LastStableOffset, p.LogStartOffset = oor.LogEnd, oor.LogEnd, oor.LogStart
			}
		}
	}
	return resp, nil
}
