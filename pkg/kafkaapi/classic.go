package kafkaapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
)

// The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
// over the broker's server-side assignment, as Kafka 4 serves classic
// members of a consumer group: the broker assigns, not a leader member.
//
//   - JoinGroup reads the subscription (and, for cooperative clients, the
//     partitions still owned) from the consumer protocol's metadata and
//     heartbeats the member into the group; the generation is the member
//     epoch. No member is made leader, so none computes an assignment.
//   - SyncGroup answers the partitions the member may consume now,
//     encoded as the consumer protocol's assignment.
//   - Heartbeat answers REBALANCE_IN_PROGRESS when that set has changed:
//     partitions to give up, or partitions freed for it. An eager client
//     then gives up everything and rejoins; a cooperative one only what it
//     lost. A partition moves only after its owner gave it up, so no two
//     live members consume one partition.
//
// Only assignors whose assignment is just partitions can be served this
// way (range, roundrobin, sticky, cooperative-sticky, kafkajs's
// RoundRobinAssigner). Custom assignors that carry their own data, such as
// Kafka Streams', get Kafka's own leader-based protocol (clientassign.go).

// serverAssignable lists the assignors whose assignments are plain
// partitions, most preferred first: a cooperative one keeps rebalances
// incremental.
var serverAssignable = []string{"cooperative-sticky", "range", "roundrobin", "sticky", "RoundRobinAssigner", "uniform"}

// noLeader is the leader id classic members are told: not one of them, so
// none runs an assignor.
const noLeader = "streambed"

func handleJoinGroup(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation, resp.LeaderID, resp.MemberID = -1, noLeader, req.MemberID
	fail := func(code int16, msg string) (kmsg.Response, error) {
		resp.ErrorCode = code
		if msg != "" {
			c.s.log.Info("refused a Kafka JoinGroup", "group", req.Group, "client_id", c.clientID, "why", msg)
		}
		return resp, nil
	}
	if !c.may(auth.Consume, auth.Group, req.Group) {
		return fail(kerr.GroupAuthorizationFailed.Code, "")
	}
	var proto *kmsg.JoinGroupRequestProtocol
	for _, name := range serverAssignable {
		for i := range req.Protocols {
			if req.Protocols[i].Name == name {
				proto = &req.Protocols[i]
				break
			}
		}
		if proto != nil {
			break
		}
	}
	inst := instanceOf(req.InstanceID)
	takeover := false
	if req.MemberID == "" && inst != "" {
		// A static member is given its id at once (it has no abandoned
		// first attempts to guard against): a new process of the instance.
		req.MemberID, takeover = newStaticMemberID(inst), true
	}
	if req.MemberID == "" {
		id := "consumer-" + rand.Text()
		if req.Version >= 4 {
			// KIP-394: the client rejoins with this id, so an
			// abandoned first attempt leaves no member behind.
			resp.MemberID = id
			return fail(kerr.MemberIDRequired.Code, "")
		}
		req.MemberID = id
	}
	// Members that assign partitions themselves (a custom assignor, or
	// another protocol type) get Kafka's leader-based protocol; so does
	// anyone joining a group that is already of that kind.
	if g, err := c.classicRead(ctx, req.Group); proto == nil || req.ProtocolType != "consumer" ||
		err == nil && g != nil && len(g.Members) > 0 {
		return c.joinClientAssigned(ctx, req, resp, takeover)
	}
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(proto.Metadata); err != nil {
		return fail(kerr.InconsistentGroupProtocol.Code, "unreadable consumer protocol metadata: "+err.Error())
	}
	for _, t := range meta.Topics {
		if !c.may(auth.Consume, auth.Topic, t) {
			return fail(kerr.TopicAuthorizationFailed.Code, "")
		}
	}
	h := broker.Heartbeat{Group: req.Group, MemberID: storeMemberID(req.MemberID), Topics: meta.Topics,
		SessionTimeout: msDuration(req.SessionTimeoutMillis), ClientID: c.clientID, Principal: c.id.Principal,
		Owned: []offsets.TopicPartitions{}}
	for _, op := range meta.OwnedPartitions {
		h.Owned = append(h.Owned, offsets.TopicPartitions{Topic: op.Topic, Partitions: op.Partitions})
	}
	if h.Topics == nil {
		h.Topics = []string{}
	}
	if inst != "" {
		h.MemberID, h.InstanceID, h.InstanceMemberID = staticStoreID(inst), inst, req.MemberID
	}
	// A member rejoining keeps its id and epoch; an unknown (or expired)
	// one joins afresh. A new process of a static member takes it over,
	// epoch and all.
	if _, m, err := c.s.store.GroupMember(ctx, req.Group, h.MemberID); err == nil && m.Live(nowMs()) {
		if inst != "" && !takeover && m.InstanceMemberID != req.MemberID {
			return fail(kerr.FencedInstanceID.Code, "")
		}
		h.MemberEpoch = m.Epoch
	}
	res, err := c.s.b.Heartbeat(ctx, h)
	if err != nil {
		return fail(classicErrorCode(err), err.Error())
	}
	resp.Generation, resp.MemberID = res.MemberEpoch, req.MemberID
	resp.ProtocolType, resp.Protocol = strp("consumer"), strp(proto.Name)
	return resp, nil
}

func handleSyncGroup(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ProtocolType, resp.Protocol = req.ProtocolType, req.Protocol
	if !c.may(auth.Consume, auth.Group, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if c.clientAssignedMember(ctx, req.Group, req.MemberID, req.InstanceID) {
		return c.syncClientAssigned(ctx, req, resp)
	}
	res, code := c.classicBeat(ctx, req.Group, req.MemberID, req.InstanceID, req.Generation)
	switch {
	case code != 0:
		resp.ErrorCode = code
		return resp, nil
	case res.MemberEpoch != req.Generation:
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp, nil
	}
	resp.MemberAssignment = consumerAssignment(res.Assignment, nil)
	return resp, nil
}

// consumerAssignment encodes partitions as the consumer protocol's
// assignment, leaving out topics keep refuses (nil keeps all).
func consumerAssignment(tps []offsets.TopicPartitions, keep func(topic string) bool) []byte {
	as := kmsg.NewConsumerMemberAssignment()
	for _, tp := range tps {
		if keep != nil && !keep(tp.Topic) {
			continue
		}
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = tp.Topic, tp.Partitions
		as.Topics = append(as.Topics, at)
	}
	return as.AppendTo(nil)
}

func handleHeartbeat(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := kmsg.NewPtrHeartbeatResponse()
	if !c.may(auth.Consume, auth.Group, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if c.clientAssignedMember(ctx, req.Group, req.MemberID, req.InstanceID) {
		return c.heartbeatClientAssigned(ctx, req, resp)
	}
	res, code := c.classicBeat(ctx, req.Group, req.MemberID, req.InstanceID, req.Generation)
	switch {
	case code != 0:
		resp.ErrorCode = code
	case res.MemberEpoch != req.Generation || res.Changed:
		// Something to give up, or something freed for it: rejoin.
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp, nil
}

// classicBeat heartbeats a classic member with what it was given (its
// owned partitions as stored); a failure is answered as a Kafka error
// code.
func (c *conn) classicBeat(ctx context.Context, group, memberID string, instance *string, generation int32) (broker.HeartbeatResult, int16) {
	key, code, err := c.memberKey(ctx, group, memberID, instance)
	if err != nil {
		return broker.HeartbeatResult{}, classicErrorCode(err)
	}
	if code != 0 {
		return broker.HeartbeatResult{}, code
	}
	if generation == 0 {
		// Epoch 0 means "join" to the broker: only a member that is still
		// there may heartbeat with it.
		if _, m, err := c.s.store.GroupMember(ctx, group, key); err != nil || m.Version == 0 {
			return broker.HeartbeatResult{}, classicErrorCode(cmp.Or(err, offsets.ErrUnknownMember))
		}
	}
	res, err := c.s.b.Heartbeat(ctx, broker.Heartbeat{Group: group, MemberID: key, MemberEpoch: generation, ClientID: c.clientID, Principal: c.id.Principal})
	if err != nil {
		return res, classicErrorCode(err)
	}
	return res, 0
}

func handleLeaveGroup(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	resp := kmsg.NewPtrLeaveGroupResponse()
	if !c.may(auth.Consume, auth.Group, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	ids := []string{req.MemberID}
	var instances []*string
	if req.Version >= 3 {
		ids = ids[:0]
		for _, m := range req.Members {
			ids = append(ids, m.MemberID)
			instances = append(instances, m.InstanceID)
		}
	}
	if g, err := c.classicRead(ctx, req.Group); err == nil && g != nil && len(g.Members) > 0 {
		codes, err := c.leaveClientAssigned(ctx, req.Group, ids, instances)
		if err != nil {
			resp.ErrorCode = classicErrorCode(err)
			return resp, nil
		}
		for _, id := range ids {
			if req.Version >= 3 {
				lm := kmsg.NewLeaveGroupResponseMember()
				lm.MemberID, lm.ErrorCode = id, codes[id]
				resp.Members = append(resp.Members, lm)
			} else {
				resp.ErrorCode = codes[id]
			}
		}
		return resp, nil
	}
	for i, id := range ids {
		key, code := storeMemberID(id), int16(0)
		var err error
		if i < len(instances) && instanceOf(instances[i]) != "" {
			// A static member leaves by its instance id: with the member id
			// of its current process, or with none (an administrator's
			// removal).
			inst := instances[i]
			if id == "" {
				key = staticStoreID(*inst)
			} else {
				key, code, err = c.memberKey(ctx, req.Group, id, inst)
			}
		}
		if code == 0 && err == nil {
			_, err = c.s.b.Heartbeat(ctx, broker.Heartbeat{Group: req.Group, MemberID: key, MemberEpoch: -1, Principal: c.id.Principal})
		}
		if err != nil {
			code = classicErrorCode(err)
		}
		if req.Version >= 3 {
			lm := kmsg.NewLeaveGroupResponseMember()
			lm.MemberID, lm.InstanceID, lm.ErrorCode = id, instanceAt(instances, i), code
			resp.Members = append(resp.Members, lm)
		} else {
			resp.ErrorCode = code
		}
	}
	return resp, nil
}

// classicErrorCode maps group errors to the classic protocol's codes.
func classicErrorCode(err error) int16 {
	switch {
	case errors.Is(err, offsets.ErrUnknownMember):
		return kerr.UnknownMemberID.Code
	case errors.Is(err, offsets.ErrStaleMemberEpoch):
		return kerr.IllegalGeneration.Code
	}
	return errorCode(err)
}

func instanceAt(instances []*string, i int) *string {
	if i < len(instances) {
		return instances[i]
	}
	return nil
}

func msDuration(ms int32) time.Duration { return time.Duration(max(ms, 0)) * time.Millisecond }

func nowMs() int64 { return time.Now().UnixMilli() }
