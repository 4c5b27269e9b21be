package kafkaapi

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/offsets"
)

func (s *Server) brokers(ctx context.Context) ([]kmsg.MetadataResponseBroker, []offsets.Node) {
	nodes := s.liveNodes(ctx)
	out := make([]kmsg.MetadataResponseBroker, len(nodes))
	for i, n := range nodes {
		out[i] = kmsg.NewMetadataResponseBroker()
		out[i].NodeID, out[i].Host, out[i].Port = n.ID, n.Host, n.Port
		if n.Rack != "" {
			out[i].Rack = strp(n.Rack)
		}
	}
	return out, nodes
}

func handleMetadata(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	s := c.s
	resp := kmsg.NewPtrMetadataResponse()
	var nodes []offsets.Node
	resp.Brokers, nodes = s.brokers(ctx)
	resp.ClusterID = strp(s.cfg.ClusterID)
	resp.ControllerID = nodes[0].ID
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	var topics []offsets.Topic
	if all {
		for after := ""; ; {
			page, next, err := s.b.ListTopics(ctx, after, 1000)
			if err != nil {
				return nil, err
			}
			for _, t := range page {
				if c.may(auth.Read, auth.Topic, t.Name) {
					topics = append(topics, t)
				}
			}
			if next == "" {
				break
			}
			after = next
		}
		for _, t := range topics {
			resp.Topics = append(resp.Topics, s.topicMetadata(t, nodes))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		} else if n, ok := s.topicName(ctx, rt.TopicID); ok {
			name = n
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID = strp(name), rt.TopicID
		if name == "" {
			mt.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if !c.may(auth.Read, auth.Topic, name) {
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		t, err := s.b.Topic(ctx, name)
		if errors.Is(err, offsets.ErrUnknownTopic) && s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation) && c.may(auth.Admin, auth.Topic, name) {
			t, err = s.b.CreateTopic(ctx, name, s.cfg.DefaultPartitions, offsets.DefaultTopicConfig())
			if errors.Is(err, offsets.ErrTopicExists) {
				t, err = s.b.Topic(ctx, name)
			}
		}
		if err != nil {
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, s.topicMetadata(t, nodes))
	}
	return resp, nil
}

// topicMetadata describes a topic's partitions: one replica each, on the
// node a hash names, leader epoch 0.
func (s *Server) topicMetadata(t offsets.Topic, nodes []offsets.Node) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = strp(t.Name)
	mt.TopicID = s.ids.note(t)
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
	for p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = leaderOf(nodes, t.ID, p)
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{mp.Leader}
		mp.ISR = []int32{mp.Leader}
		mt.Partitions[p] = mp
	}
	return mt
}

func handleDescribeCluster(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	s := c.s
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.ClusterID = s.cfg.ClusterID
	nodes := s.liveNodes(ctx)
	resp.ControllerID = nodes[0].ID
	for _, n := range nodes {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = n.ID, n.Host, n.Port
		if n.Rack != "" {
			b.Rack = strp(n.Rack)
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp, nil
}
