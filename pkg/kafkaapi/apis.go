package kafkaapi

import (
	"context"
	"encoding/hex"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/offsets"
)

// versionRange is the versions of one API this server speaks. Old
// versions stay in range where clients still use them: librdkafka, for
// one, turns features on only when the versions it knows are offered.
// Versions that address topics by id only (Produce 13, Fetch 13+) are
// left out: clients fall back to names.
type versionRange struct{ min, max int16 }

var versions = map[int16]versionRange{
	kmsg.Produce.Int16():                 {3, 12},
	kmsg.Fetch.Int16():                   {4, 12},
	kmsg.ListOffsets.Int16():             {1, 8},
	kmsg.Metadata.Int16():                {0, 12},
	kmsg.OffsetForLeaderEpoch.Int16():    {2, 4},
	kmsg.SASLHandshake.Int16():           {0, 1},
	kmsg.ApiVersions.Int16():             {0, 4},
	kmsg.CreateTopics.Int16():            {2, 7},
	kmsg.DeleteTopics.Int16():            {1, 6},
	kmsg.DeleteRecords.Int16():           {0, 2},
	kmsg.InitProducerID.Int16():          {0, 5},
	kmsg.DescribeConfigs.Int16():         {1, 4},
	kmsg.AlterConfigs.Int16():            {0, 2},
	kmsg.SASLAuthenticate.Int16():        {0, 2},
	kmsg.CreatePartitions.Int16():        {0, 3},
	kmsg.IncrementalAlterConfigs.Int16(): {0, 1},
	kmsg.DescribeCluster.Int16():         {0, 1},
	// Groups: the consumer protocol (KIP-848), offsets and group admin.
	kmsg.FindCoordinator.Int16():        {0, 6},
	kmsg.OffsetCommit.Int16():           {2, 9},
	kmsg.OffsetFetch.Int16():            {1, 9},
	kmsg.ListGroups.Int16():             {0, 5},
	kmsg.DescribeGroups.Int16():         {0, 5},
	kmsg.DeleteGroups.Int16():           {0, 2},
	kmsg.ConsumerGroupHeartbeat.Int16(): {0, 1},
	kmsg.ConsumerGroupDescribe.Int16():  {0, 1},
	// The classic group protocol, over the same server-side assignment.
	kmsg.JoinGroup.Int16():    {0, 9},
	kmsg.SyncGroup.Int16():    {0, 5},
	kmsg.Heartbeat.Int16():    {0, 4},
	kmsg.LeaveGroup.Int16():   {0, 5},
	kmsg.OffsetDelete.Int16(): {0, 0},
}

// handler answers one request; a nil response sends nothing, and an error
// closes the connection.
type handler func(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error)

// handlerFor is the handler of every API in versions.
func handlerFor(key int16) handler {
	switch kmsg.Key(key) {
	case kmsg.ApiVersions:
		return handleAPIVersions
	case kmsg.Metadata:
		return handleMetadata
	case kmsg.DescribeCluster:
		return handleDescribeCluster
	case kmsg.Produce:
		return handleProduce
	case kmsg.Fetch:
		return handleFetch
	case kmsg.ListOffsets:
		return handleListOffsets
	case kmsg.FindCoordinator:
		return handleFindCoordinator
	case kmsg.OffsetCommit:
		return handleOffsetCommit
	case kmsg.OffsetFetch:
		return handleOffsetFetch
	case kmsg.ListGroups:
		return handleListGroups
	case kmsg.DescribeGroups:
		return handleDescribeGroups
	case kmsg.DeleteGroups:
		return handleDeleteGroups
	case kmsg.ConsumerGroupHeartbeat:
		return handleConsumerGroupHeartbeat
	case kmsg.ConsumerGroupDescribe:
		return handleConsumerGroupDescribe
	case kmsg.JoinGroup:
		return handleJoinGroup
	case kmsg.SyncGroup:
		return handleSyncGroup
	case kmsg.Heartbeat:
		return handleHeartbeat
	case kmsg.LeaveGroup:
		return handleLeaveGroup
	case kmsg.OffsetDelete:
		return handleOffsetDelete
	case kmsg.OffsetForLeaderEpoch:
		return handleOffsetForLeaderEpoch
	case kmsg.InitProducerID:
		return handleInitProducerID
	case kmsg.CreateTopics:
		return handleCreateTopics
	case kmsg.DeleteTopics:
		return handleDeleteTopics
	case kmsg.CreatePartitions:
		return handleCreatePartitions
	case kmsg.DeleteRecords:
		return handleDeleteRecords
	case kmsg.DescribeConfigs:
		return handleDescribeConfigs
	case kmsg.AlterConfigs:
		return handleAlterConfigs
	case kmsg.IncrementalAlterConfigs:
		return handleIncrementalAlterConfigs
	case kmsg.SASLHandshake:
		return handleSASLHandshake
	case kmsg.SASLAuthenticate:
		return handleSASLAuthenticate
	}
	return nil
}

var errUnsupportedVersion = kerr.UnsupportedVersion.Code

func apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	keys := make([]int16, 0, len(versions))
	for k := range versions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		v := versions[k]
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, v.min, v.max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

func handleAPIVersions(_ context.Context, _ *conn, kreq kmsg.Request) (kmsg.Response, error) {
	return apiVersionsResponse(kreq.GetVersion()), nil
}

// Topic ids: Kafka's are 16-byte UUIDs; a topic's is its Streambed id (12
// random bytes) behind a fixed prefix, so it is stable, the same on every
// node, and leads back to the topic.
var topicIDPrefix = [4]byte{'S', 'B', 'T', 1}

func kafkaTopicID(id string) [16]byte {
	var out [16]byte
	copy(out[:], topicIDPrefix[:])
	if b, err := hex.DecodeString(id); err == nil && len(b) == 12 {
		copy(out[4:], b)
	}
	return out
}

// topicIDs remembers topic names by Kafka topic id.
type topicIDs struct {
	mu    sync.Mutex
	names map[[16]byte]string
}

func (t *topicIDs) note(tp offsets.Topic) [16]byte {
	id := kafkaTopicID(tp.ID)
	t.mu.Lock()
	if t.names == nil || len(t.names) > 100_000 {
		t.names = map[[16]byte]string{}
	}
	t.names[id] = tp.Name
	t.mu.Unlock()
	return id
}

// name finds the topic of a Kafka topic id, listing topics if it is not
// known yet.
func (s *Server) topicName(ctx context.Context, id [16]byte) (string, bool) {
	s.ids.mu.Lock()
	name, ok := s.ids.names[id]
	s.ids.mu.Unlock()
	if ok {
		return name, true
	}
	for after := ""; ; {
		topics, next, err := s.b.ListTopics(ctx, after, 1000)
		if err != nil {
			return "", false
		}
		for _, t := range topics {
			if s.ids.note(t) == id {
				return t.Name, true
			}
		}
		if next == "" {
			return "", false
		}
		after = next
	}
}

func strp(s string) *string { return &s }
