package kafkaapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
)

// Consumer groups over the wire. A group's state lives in the metadata
// store (pkg/offsets), so any node can serve any group: the coordinator
// FindCoordinator names is a hash of the group over the live nodes, a
// hint like partition leaders, and NOT_COORDINATOR is never answered.
//
// The consumer protocol of KIP-848 (ConsumerGroupHeartbeat) maps onto the
// broker's own server-side assignment, the one HTTP groups use: a Kafka
// group and an HTTP group are the same thing, with the same committed
// offsets and lag.

// Member ids: Kafka clients choose their own (KIP-848), often base64 with
// '+', '/' and '='; the store keeps member ids to a safe alphabet. An id
// outside it is stored encoded, behind a prefix, and shown decoded.
const encodedMemberPrefix = "kafka."

func storeMemberID(id string) string {
	if id == "" || offsets.ValidateMemberID(id) == nil && !strings.HasPrefix(id, encodedMemberPrefix) {
		return id
	}
	return encodedMemberPrefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func kafkaMemberID(id string) string {
	if rest, ok := strings.CutPrefix(id, encodedMemberPrefix); ok {
		if raw, err := base64.RawURLEncoding.DecodeString(rest); err == nil {
			return string(raw)
		}
	}
	return id
}

// coordinatorTypeTxn is FindCoordinator's key type for transactions.
const coordinatorTypeTxn = 1

func handleFindCoordinator(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := kmsg.NewPtrFindCoordinatorResponse()
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	nodes := c.s.liveNodes(ctx)
	for _, k := range keys {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key, co.NodeID = k, -1
		switch {
		case req.CoordinatorType == coordinatorTypeTxn:
			// Transactions are not supported: a clear error the clients
			// treat as fatal, not one they retry forever.
			co.ErrorCode = kerr.UnsupportedVersion.Code
			co.ErrorMessage = strp("transactions are not supported by Streambed")
		case !c.may(auth.Consume, auth.Group, k):
			co.ErrorCode = kerr.GroupAuthorizationFailed.Code
		default:
			h := fnv.New32a()
			h.Write([]byte(k))
			n := nodes[h.Sum32()%uint32(len(nodes))]
			co.NodeID, co.Host, co.Port = n.ID, n.Host, n.Port
		}
		resp.Coordinators = append(resp.Coordinators, co)
	}
	if req.Version < 4 && len(resp.Coordinators) == 1 {
		co := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = co.ErrorCode, co.ErrorMessage, co.NodeID, co.Host, co.Port
		resp.Coordinators = nil
	}
	return resp, nil
}

// handleConsumerGroupHeartbeat is KIP-848's one group call: join (epoch
// 0), heartbeat with what the member owns, leave (-1, or -2 for a static
// member). The answer carries the member's target assignment.
func handleConsumerGroupHeartbeat(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	fail := func(code int16, msg string) (kmsg.Response, error) {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = strp(msg)
		}
		return resp, nil
	}
	if !c.may(auth.Consume, auth.Group, req.Group) {
		return fail(kerr.GroupAuthorizationFailed.Code, "")
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		return fail(kerr.InvalidRequest.Code, "subscribing by regular expression is not supported; subscribe to topic names")
	}
	for _, t := range req.SubscribedTopicNames {
		if !c.may(auth.Consume, auth.Topic, t) {
			return fail(kerr.TopicAuthorizationFailed.Code, "not allowed to consume topic "+t)
		}
	}
	h := broker.Heartbeat{Group: req.Group, MemberID: storeMemberID(req.MemberID), MemberEpoch: req.MemberEpoch,
		Topics: req.SubscribedTopicNames, ClientID: c.clientID, Principal: c.id.Principal}
	kafkaID := ""
	if inst := instanceOf(req.InstanceID); inst != "" {
		if kafkaID = req.MemberID; kafkaID == "" {
			kafkaID = newStaticMemberID(inst)
		}
		key, code, err := c.memberKey(ctx, req.Group, kafkaID, req.InstanceID)
		switch {
		case err != nil:
			return fail(errorCode(err), err.Error())
		case req.MemberEpoch == 0 && code == kerr.FencedInstanceID.Code:
			// A new process of the instance takes the member over: its
			// epoch and assignment, without a rebalance.
			_, m, _ := c.s.store.GroupMember(ctx, req.Group, key)
			h.MemberEpoch = m.Epoch
			h.Owned = nil
		case req.MemberEpoch == 0:
		case code != 0:
			return fail(code, "")
		case req.MemberEpoch == -2:
			// A static member leaving for now keeps its place (and
			// partitions) until its session ends or a new process of it
			// takes it over.
			resp.MemberID, resp.MemberEpoch = strp(kafkaID), -2
			return resp, nil
		}
		h.MemberID, h.InstanceID, h.InstanceMemberID = key, inst, kafkaID
	}
	if h.MemberEpoch == -2 { // a dynamic member sending a static leave: it leaves
		h.MemberEpoch = -1
	}
	if req.MemberEpoch == 0 && h.Topics == nil {
		h.Topics = []string{}
	}
	if req.ServerAssignor != nil {
		h.Assignor = assignorFromKafka(*req.ServerAssignor)
	}
	if req.Topics != nil {
		h.Owned = []offsets.TopicPartitions{}
		for _, t := range req.Topics {
			name, ok := c.s.topicName(ctx, t.TopicID)
			if !ok {
				continue // a deleted topic: nothing of it is owned any more
			}
			h.Owned = append(h.Owned, offsets.TopicPartitions{Topic: name, Partitions: t.Partitions})
		}
	}
	res, err := c.s.b.Heartbeat(ctx, h)
	if err != nil {
		switch {
		case errors.Is(err, offsets.ErrStaleMemberEpoch):
			return fail(kerr.FencedMemberEpoch.Code, err.Error())
		case errors.Is(err, offsets.ErrUnknownMember):
			return fail(kerr.UnknownMemberID.Code, err.Error())
		}
		return fail(errorCode(err), err.Error())
	}
	resp.MemberID = strp(kafkaMemberID(res.MemberID))
	if kafkaID != "" {
		resp.MemberID = strp(kafkaID)
	}
	resp.MemberEpoch = res.MemberEpoch
	resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval / time.Millisecond)
	if h.MemberEpoch == -1 {
		return resp, nil
	}
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	for _, tp := range res.Assignment {
		t, err := c.s.b.Topic(ctx, tp.Topic)
		if err != nil {
			continue // deleted since: the next heartbeat's assignment drops it
		}
		at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		at.TopicID, at.Partitions = c.s.ids.note(t), tp.Partitions
		a.Topics = append(a.Topics, at)
	}
	resp.Assignment = &a
	return resp, nil
}

// assignorFromKafka maps KIP-848's server assignor names onto the
// broker's: "uniform" balances partitions over members, "range" gives
// each member the same ranges of every topic.
func assignorFromKafka(name string) string {
	if name == "range" {
		return "range"
	}
	return "uniform"
}

// handleOffsetCommit commits a group's offsets. A member commits with its
// id and epoch (KIP-848) or generation (classic); a consumer without a
// group membership (assign) commits with generation -1 and no member,
// which a group with live members refuses.
func handleOffsetCommit(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	resp := kmsg.NewPtrOffsetCommitResponse()
	groupOK := c.may(auth.Consume, auth.Group, req.Group)
	var offs []offsets.CommittedOffset
	type at struct{ t, p int }
	var where []at
	now := time.Now().UnixMilli()
	for i, rt := range req.Topics {
		out := kmsg.NewOffsetCommitResponseTopic()
		out.Topic = rt.Topic
		topicOK := c.may(auth.Consume, auth.Topic, rt.Topic)
		for j, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case !groupOK:
				p.ErrorCode = kerr.GroupAuthorizationFailed.Code
			case !topicOK:
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case rp.Offset < 0:
				p.ErrorCode = kerr.InvalidCommitOffsetSize.Code
			default:
				co := offsets.CommittedOffset{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, CommittedMs: now, MemberID: storeMemberID(req.MemberID)}
				if rp.Metadata != nil {
					co.Metadata = *rp.Metadata
				}
				offs = append(offs, co)
				where = append(where, at{i, j})
			}
			out.Partitions = append(out.Partitions, p)
		}
		resp.Topics = append(resp.Topics, out)
	}
	if len(offs) == 0 {
		return resp, nil
	}
	member, epoch := storeMemberID(req.MemberID), req.Generation
	if member == "" {
		epoch = -1
	}
	// A client-assigned group: the member and generation are checked
	// against its classic state, and the offsets committed for the group.
	if g, err := c.classicRead(ctx, req.Group); err == nil && g != nil && len(g.Members) > 0 {
		code := int16(0)
		switch _, ok := g.Members[req.MemberID]; {
		case req.MemberID == "" || !ok:
			code = unknownOrFenced(g, req.InstanceID)
		case req.Generation != g.Generation:
			code = kerr.IllegalGeneration.Code
		case g.State == offsets.ClassicPreparingRebalance:
			code = kerr.RebalanceInProgress.Code
		}
		if code != 0 {
			for _, w := range where {
				resp.Topics[w.t].Partitions[w.p].ErrorCode = code
			}
			return resp, nil
		}
		member, epoch = "", -1
		for i := range offs {
			offs[i].MemberID = ""
		}
	} else if instanceOf(req.InstanceID) != "" {
		key, code, err := c.memberKey(ctx, req.Group, req.MemberID, req.InstanceID)
		if err != nil {
			code = errorCode(err)
		}
		if code != 0 {
			for _, w := range where {
				resp.Topics[w.t].Partitions[w.p].ErrorCode = code
			}
			return resp, nil
		}
		member = key
		for i := range offs {
			offs[i].MemberID = key
		}
	}
	if err := c.s.b.CommitOffsetsAs(ctx, c.id.Principal, req.Group, member, epoch, offs); err != nil {
		code := errorCode(err)
		var fe *broker.FieldError
		switch {
		case errors.Is(err, offsets.ErrStaleMemberEpoch) && req.Version >= 9:
			code = kerr.StaleMemberEpoch.Code
		case errors.Is(err, offsets.ErrStaleMemberEpoch), errors.Is(err, offsets.ErrPartitionNotAssigned):
			code = kerr.IllegalGeneration.Code
		case errors.Is(err, offsets.ErrUnknownMember):
			code = kerr.UnknownMemberID.Code
		case errors.Is(err, offsets.ErrGroupNotEmpty):
			// A commit without membership to a group with live members
			// (Kafka answers the same to a classic group mid-rebalance).
			code = kerr.UnknownMemberID.Code
		case errors.As(err, &fe):
			code = kerr.UnknownTopicOrPartition.Code
		}
		for _, w := range where {
			resp.Topics[w.t].Partitions[w.p].ErrorCode = code
		}
	}
	return resp, nil
}

// handleOffsetFetch returns committed offsets: of the partitions asked
// for (-1 where none is committed), or of every partition committed.
func handleOffsetFetch(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := kmsg.NewPtrOffsetFetchResponse()
	if req.Version < 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = req.Group
		if req.Topics != nil {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, t := range req.Topics {
				gt := kmsg.NewOffsetFetchRequestGroupTopic()
				gt.Topic, gt.Partitions = t.Topic, t.Partitions
				rg.Topics = append(rg.Topics, gt)
			}
		}
		g := c.offsetFetchGroup(ctx, rg)
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.offsetFetchGroup(ctx, rg))
	}
	return resp, nil
}

func (c *conn) offsetFetchGroup(ctx context.Context, rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group = rg.Group
	if !c.may(auth.Consume, auth.Group, rg.Group) && !c.may(auth.Read, auth.Group, rg.Group) {
		g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return g
	}
	committed, err := c.s.b.CommittedOffsets(ctx, rg.Group, "")
	if err != nil && !errors.Is(err, offsets.ErrUnknownGroup) {
		g.ErrorCode = errorCode(err)
		return g
	}
	byTP := map[string]map[int32]offsets.CommittedOffset{}
	for _, co := range committed {
		if byTP[co.Topic] == nil {
			byTP[co.Topic] = map[int32]offsets.CommittedOffset{}
		}
		byTP[co.Topic][co.Partition] = co
	}
	partition := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
		if co, ok := byTP[topic][p]; ok {
			rp.Offset, rp.Metadata = co.Offset, strp(co.Metadata)
		}
		return rp
	}
	if rg.Topics == nil { // every committed partition the caller may see
		for _, co := range committed {
			if !c.sees(auth.Topic, co.Topic) {
				continue
			}
			i := len(g.Topics) - 1
			if i < 0 || g.Topics[i].Topic != co.Topic {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = co.Topic
				g.Topics = append(g.Topics, t)
				i++
			}
			g.Topics[i].Partitions = append(g.Topics[i].Partitions, partition(co.Topic, co.Partition))
		}
		return g
	}
	for _, rt := range rg.Topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		allowed := c.sees(auth.Topic, rt.Topic)
		for _, p := range rt.Partitions {
			rp := partition(rt.Topic, p)
			if !allowed {
				rp.Offset, rp.Metadata, rp.ErrorCode = -1, nil, kerr.TopicAuthorizationFailed.Code
			}
			t.Partitions = append(t.Partitions, rp)
		}
		g.Topics = append(g.Topics, t)
	}
	return g
}

// sees reports whether the principal may see a topic's or group's offsets
// and members: it may read or consume it.
func (c *conn) sees(kind auth.Kind, name string) bool {
	return c.may(auth.Read, kind, name) || c.may(auth.Consume, kind, name)
}

// groupState is Kafka's name of a group's state.
func groupState(info broker.GroupInfo) string {
	switch info.State {
	case broker.GroupEmpty:
		return "Empty"
	case broker.GroupReconciling:
		return "Reconciling"
	}
	return "Stable"
}

func handleListGroups(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := kmsg.NewPtrListGroupsResponse()
	for after := ""; ; {
		names, next, err := c.s.b.ListGroups(ctx, after, 1000)
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
		for _, n := range names {
			if !c.sees(auth.Group, n) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupType = n, "consumer", "consumer"
			if req.Version >= 4 || len(req.StatesFilter) > 0 {
				info, err := c.s.b.DescribeGroup(ctx, n)
				if err != nil {
					continue
				}
				lg.GroupState = groupState(info)
				if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, lg.GroupState) {
					continue
				}
			}
			if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "consumer") {
				continue
			}
			resp.Groups = append(resp.Groups, lg)
		}
		if next == "" {
			return resp, nil
		}
		after = next
	}
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// handleDescribeGroups describes groups the classic way (admin tools and
// older clients ask so): members with their assignments encoded as the
// consumer protocol's assignment.
func handleDescribeGroups(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := kmsg.NewPtrDescribeGroupsResponse()
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = name
		if !c.sees(auth.Group, name) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if cg, err := c.classicRead(ctx, name); err == nil && cg != nil && len(cg.Members) > 0 {
			// A client-assigned group: members as the leader saw them.
			g.State, g.ProtocolType, g.Protocol = cg.State, cg.ProtocolType, cg.Protocol
			ids := make([]string, 0, len(cg.Members))
			for id := range cg.Members {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				m := cg.Members[id]
				gm := kmsg.NewDescribeGroupsResponseGroupMember()
				gm.MemberID, gm.ClientID, gm.ClientHost, gm.MemberAssignment = id, m.ClientID, "/", cg.Assignments[id]
				for _, p := range m.Protocols {
					if p.Name == cg.Protocol {
						gm.ProtocolMetadata = p.Metadata
					}
				}
				g.Members = append(g.Members, gm)
			}
			resp.Groups = append(resp.Groups, g)
			continue
		}
		info, err := c.s.b.DescribeGroup(ctx, name)
		switch {
		case errors.Is(err, offsets.ErrUnknownGroup):
			g.State = "Dead"
		case err != nil:
			g.ErrorCode = errorCode(err)
		default:
			g.State, g.ProtocolType, g.Protocol = groupState(info), "consumer", info.Assignor
			for _, m := range info.Members {
				gm := kmsg.NewDescribeGroupsResponseGroupMember()
				gm.MemberID, gm.InstanceID = memberIdentity(m)
				gm.ClientID, gm.ClientHost = m.ClientID, "/"
				meta := kmsg.NewConsumerMemberMetadata()
				meta.Topics = m.Topics
				gm.ProtocolMetadata = meta.AppendTo(nil)
				gm.MemberAssignment = consumerAssignment(m.Assignment, func(topic string) bool { return c.sees(auth.Topic, topic) })
				g.Members = append(g.Members, gm)
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// handleConsumerGroupDescribe is KIP-848's describe: epochs, members,
// their assignments and targets.
func handleConsumerGroupDescribe(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := kmsg.NewPtrConsumerGroupDescribeResponse()
	assignment := func(ctx context.Context, tps []offsets.TopicPartitions) kmsg.Assignment {
		a := kmsg.NewAssignment()
		for _, tp := range tps {
			if !c.sees(auth.Topic, tp.Topic) {
				continue
			}
			t, err := c.s.b.Topic(ctx, tp.Topic)
			if err != nil {
				continue
			}
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID, at.Topic, at.Partitions = c.s.ids.note(t), tp.Topic, tp.Partitions
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		return a
	}
	for _, name := range req.Groups {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group = name
		if !c.sees(auth.Group, name) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		info, err := c.s.b.DescribeGroup(ctx, name)
		switch {
		case errors.Is(err, offsets.ErrUnknownGroup):
			g.ErrorCode = kerr.GroupIDNotFound.Code
		case err != nil:
			g.ErrorCode = errorCode(err)
		default:
			g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = groupState(info), info.Epoch, info.AssignmentEpoch, info.Assignor
			for _, m := range info.Members {
				gm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				gm.MemberID, gm.InstanceID = memberIdentity(m)
				gm.MemberEpoch, gm.ClientID, gm.ClientHost = m.Epoch, m.ClientID, "/"
				gm.SubscribedTopics = m.Topics
				gm.Assignment, gm.TargetAssignment = assignment(ctx, m.Assignment), assignment(ctx, m.Target)
				g.Members = append(g.Members, gm)
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func handleDeleteGroups(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := kmsg.NewPtrDeleteGroupsResponse()
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		if !c.may(auth.Admin, auth.Group, name) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		switch err := c.s.b.DeleteGroup(ctx, name); {
		case errors.Is(err, offsets.ErrUnknownGroup):
			g.ErrorCode = kerr.GroupIDNotFound.Code
		case errors.Is(err, offsets.ErrGroupNotEmpty):
			g.ErrorCode = kerr.NonEmptyGroup.Code
		case err != nil:
			g.ErrorCode = errorCode(err)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// handleOffsetDelete removes a group's committed offsets of partitions of
// topics no live member consumes (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
func handleOffsetDelete(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	resp := kmsg.NewPtrOffsetDeleteResponse()
	if !c.may(auth.Admin, auth.Group, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	subscribed, err := c.subscribedTopics(ctx, req.Group)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		if errors.Is(err, offsets.ErrUnknownGroup) {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
		}
		return resp, nil
	}
	var del []offsets.TopicPartition
	for _, rt := range req.Topics {
		out := kmsg.NewOffsetDeleteResponseTopic()
		out.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetDeleteResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case !c.sees(auth.Topic, rt.Topic):
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case subscribed == nil || subscribed[rt.Topic]:
				p.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				del = append(del, offsets.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
			}
			out.Partitions = append(out.Partitions, p)
		}
		resp.Topics = append(resp.Topics, out)
	}
	if len(del) > 0 {
		if err := c.s.b.DeleteCommittedOffsets(ctx, req.Group, del); err != nil {
			resp.ErrorCode = errorCode(err)
		}
	}
	return resp, nil
}

// subscribedTopics returns the topics a group's live members consume
// (nil if that cannot be told: a client-assigned group of another protocol
// type). A group that does not exist is ErrUnknownGroup.
func (c *conn) subscribedTopics(ctx context.Context, group string) (map[string]bool, error) {
	v, err := c.s.store.LoadGroupMeta(ctx, group)
	if err != nil {
		return nil, err
	}
	if !v.Exists {
		committed, err := c.s.b.CommittedOffsets(ctx, group, "")
		if err != nil {
			return nil, err
		}
		if len(committed) == 0 {
			return nil, fmt.Errorf("%w: %s", offsets.ErrUnknownGroup, group)
		}
		return map[string]bool{}, nil
	}
	out := map[string]bool{}
	if cg := v.Meta.Classic; cg != nil && v.Meta.LiveClassicMembers(nowMs()) > 0 {
		for _, m := range cg.Members {
			for _, p := range m.Protocols {
				if p.Name != cg.Protocol {
					continue
				}
				var meta kmsg.ConsumerMemberMetadata
				if cg.ProtocolType != "consumer" || meta.ReadFrom(p.Metadata) != nil {
					return nil, nil
				}
				for _, t := range meta.Topics {
					out[t] = true
				}
			}
		}
		return out, nil
	}
	info, err := c.s.b.DescribeGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	for _, m := range info.Members {
		for _, t := range m.Topics {
			out[t] = true
		}
	}
	return out, nil
}
