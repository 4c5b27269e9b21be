package kafkaapi

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
)

// ListOffsets timestamps with special meanings.
const (
	latestOffset        = -1
	earliestOffset      = -2
	maxTimestampOffset  = -3
	earliestLocalOffset = -4
)

func handleListOffsets(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := kmsg.NewPtrListOffsetsResponse()
	for _, rt := range req.Topics {
		out := kmsg.NewListOffsetsResponseTopic()
		out.Topic = rt.Topic
		allowed := c.may(auth.Read, auth.Topic, rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition, p.Timestamp, p.Offset, p.LeaderEpoch = rp.Partition, -1, -1, 0
			if !allowed {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
				out.Partitions = append(out.Partitions, p)
				continue
			}
			st, err := c.s.b.Partitions(ctx, rt.Topic, rp.Partition)
			if err != nil {
				p.ErrorCode = errorCode(err)
				out.Partitions = append(out.Partitions, p)
				continue
			}
			switch ts := rp.Timestamp; ts {
			case latestOffset:
				p.Offset = st[0].LogEnd
			case earliestOffset, earliestLocalOffset:
				p.Offset = st[0].LogStart
			case maxTimestampOffset:
				// The first record holding the largest timestamp.
				if st[0].LogEnd > st[0].LogStart && st[0].MaxTimestamp > 0 {
					off, recTs, found, _, err := c.s.b.OffsetForTimestamp(ctx, rt.Topic, rp.Partition, st[0].MaxTimestamp)
					if err != nil {
						p.ErrorCode = errorCode(err)
					} else if found {
						p.Offset, p.Timestamp = off, recTs
					}
				}
			default:
				if ts < 0 {
					p.ErrorCode = kerr.InvalidRequest.Code
					break
				}
				off, recTs, found, _, err := c.s.b.OffsetForTimestamp(ctx, rt.Topic, rp.Partition, ts)
				switch {
				case err != nil:
					p.ErrorCode = errorCode(err)
				case found:
					p.Offset, p.Timestamp = off, recTs
				}
			}
			if req.Version == 0 && p.Offset >= 0 {
				p.OldStyleOffsets = []int64{p.Offset}
			}
			out.Partitions = append(out.Partitions, p)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// handleOffsetForLeaderEpoch: there is one leader epoch, 0, and it ends at
// the log end. Clients ask to validate their positions after metadata
// changes (KIP-320).
func handleOffsetForLeaderEpoch(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for _, rt := range req.Topics {
		out := kmsg.NewOffsetForLeaderEpochResponseTopic()
		out.Topic = rt.Topic
		allowed := c.may(auth.Read, auth.Topic, rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			p.Partition, p.LeaderEpoch, p.EndOffset = rp.Partition, 0, -1
			switch {
			case !allowed:
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case rp.CurrentLeaderEpoch > 0:
				p.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				st, err := c.s.b.Partitions(ctx, rt.Topic, rp.Partition)
				if err != nil {
					p.ErrorCode = errorCode(err)
				} else {
					p.EndOffset = st[0].LogEnd
				}
			}
			out.Partitions = append(out.Partitions, p)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

func handleDeleteRecords(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := kmsg.NewPtrDeleteRecordsResponse()
	for _, rt := range req.Topics {
		out := kmsg.NewDeleteRecordsResponseTopic()
		out.Topic = rt.Topic
		allowed := c.may(auth.Admin, auth.Topic, rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewDeleteRecordsResponseTopicPartition()
			p.Partition, p.LowWatermark = rp.Partition, -1
			if !allowed {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if low, err := c.s.b.DeleteRecords(ctx, rt.Topic, rp.Partition, rp.Offset); err != nil {
				p.ErrorCode = errorCode(err)
			} else {
				p.LowWatermark = low
			}
			out.Partitions = append(out.Partitions, p)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// handleInitProducerID allocates producer ids (from blocks each node
// leases, so the counter is not hot) and bumps a known producer's epoch
// (KIP-360). Transactions are not supported: a transactional id is
// refused with UNSUPPORTED_VERSION, which clients treat as fatal.
func handleInitProducerID(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		c.s.log.Info("a Kafka client asked for a transactional producer; transactions are not supported", "client", c.nc.RemoteAddr(), "client_id", c.clientID)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp, nil
	}
	if !c.may(auth.Produce, auth.Topic, "*") && !c.mayAnyTopic(auth.Produce) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		// Fencing is per partition, by epoch: the next epoch fences the
		// producer's earlier incarnation wherever it wrote.
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp, nil
	}
	id, err := c.s.b.AllocateProducerID(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// mayAnyTopic reports whether the principal may do op on some topic.
func (c *conn) mayAnyTopic(op auth.Op) bool {
	return c.s.cfg.Auth == nil || c.s.cfg.Auth.AllowedAny(c.id, op, auth.Topic)
}
