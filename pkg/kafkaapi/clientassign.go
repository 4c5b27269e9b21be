package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/offsets"
)

// Client-assigned groups: Kafka's classic protocol as Kafka runs it, for
// members whose assignor carries data of its own (Kafka Streams') and so
// cannot be replaced by the broker's assignment. A leader member receives
// every member's metadata, runs its assignor and hands the result back in
// SyncGroup.
//
// The group's state (offsets.ClassicGroup) is one item, the group's meta,
// changed only by conditional writes, so nodes need not agree on anything
// else: a JoinGroup or SyncGroup waits by polling that item, and whichever
// node sees that every member has rejoined (or that the rebalance timeout
// has passed) completes the round. Any node serves any of these requests.

// classicPoll is how often a waiting JoinGroup or SyncGroup reads the
// group again.
const classicPoll = 50 * time.Millisecond

// errRoundMoved: the rebalance the request waited for was superseded.
var errRoundMoved = errors.New("the rebalance moved on")

// classicUpdate applies fn to the group's client-assigned state and writes
// it, retrying on a concurrent change. fn sees expired members removed
// (and a rebalance begun if any was). It returns the state as written.
func (c *conn) classicUpdate(ctx context.Context, group string, fn func(g *offsets.ClassicGroup, now int64) error) (*offsets.ClassicGroup, error) {
	for {
		v, err := c.s.store.LoadGroupMeta(ctx, group)
		if err != nil {
			return nil, err
		}
		meta := v.Meta
		now := nowMs()
		if !v.Exists {
			meta = offsets.GroupMeta{Assignor: "client", CreatedMs: now}
		}
		g := meta.Classic
		if g == nil {
			g = &offsets.ClassicGroup{State: offsets.ClassicEmpty}
		}
		g = cloneClassic(g)
		expireClassic(g, now)
		if err := fn(g, now); err != nil {
			return nil, err
		}
		meta.Classic = g
		err = c.s.store.WriteGroup(ctx, group, offsets.GroupWrite{Meta: &meta, MetaVersion: v.MetaVersion})
		switch {
		case err == nil:
			return g, nil
		case errors.Is(err, offsets.ErrConditionFailed):
			continue // another request changed the group: apply fn again
		default:
			return nil, err
		}
	}
}

// classicRead returns the group's client-assigned state (nil if it has
// none).
func (c *conn) classicRead(ctx context.Context, group string) (*offsets.ClassicGroup, error) {
	v, err := c.s.store.LoadGroupMeta(ctx, group)
	if err != nil || !v.Exists || v.Meta.Classic == nil {
		return nil, err
	}
	return v.Meta.Classic, nil
}

func cloneClassic(g *offsets.ClassicGroup) *offsets.ClassicGroup {
	out := *g
	out.Members = map[string]*offsets.ClassicMember{}
	for id, m := range g.Members {
		mm := *m
		out.Members[id] = &mm
	}
	out.Assignments = map[string][]byte{}
	for id, a := range g.Assignments {
		out.Assignments[id] = a
	}
	return &out
}

// expireClassic removes members whose sessions ended and begins a
// rebalance for the rest; a rebalance past its deadline completes without
// the members that did not rejoin.
func expireClassic(g *offsets.ClassicGroup, now int64) {
	gone := false
	for id, m := range g.Members {
		if m.DeadlineMs <= now && !(g.State == offsets.ClassicPreparingRebalance && m.JoinedRound == g.Round) {
			delete(g.Members, id)
			gone = true
		}
	}
	if gone {
		beginRebalance(g, now)
	}
	if g.State == offsets.ClassicPreparingRebalance && now >= g.RebalanceDeadlineMs {
		for id, m := range g.Members {
			if m.JoinedRound != g.Round {
				delete(g.Members, id)
			}
		}
	}
	maybeComplete(g)
}

// classicDue reports whether expireClassic has work: a member whose
// session ended (one not yet rejoined, during a rebalance) or a round past
// its deadline.
func classicDue(g *offsets.ClassicGroup, now int64) bool {
	if g.State == offsets.ClassicPreparingRebalance && now >= g.RebalanceDeadlineMs {
		return true
	}
	for _, m := range g.Members {
		if m.DeadlineMs <= now && !(g.State == offsets.ClassicPreparingRebalance && m.JoinedRound == g.Round) {
			return true
		}
	}
	return false
}

// beginRebalance starts a round: every member must rejoin.
func beginRebalance(g *offsets.ClassicGroup, now int64) {
	if len(g.Members) == 0 {
		g.State, g.Leader, g.Assignments = offsets.ClassicEmpty, "", nil
		return
	}
	if g.State == offsets.ClassicPreparingRebalance {
		return
	}
	g.State = offsets.ClassicPreparingRebalance
	g.Round++
	timeout := int32(0)
	for _, m := range g.Members {
		timeout = max(timeout, m.RebalanceTimeoutMs)
	}
	g.RebalanceDeadlineMs = now + int64(timeout)
}

// maybeComplete ends a round once every member has rejoined: a new
// generation, a protocol every member offers, a leader.
func maybeComplete(g *offsets.ClassicGroup) {
	if g.State != offsets.ClassicPreparingRebalance {
		return
	}
	if len(g.Members) == 0 {
		g.State, g.Leader, g.Assignments = offsets.ClassicEmpty, "", nil
		return
	}
	for _, m := range g.Members {
		if m.JoinedRound != g.Round {
			return
		}
	}
	ids := make([]string, 0, len(g.Members))
	for id := range g.Members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if _, ok := g.Members[g.Leader]; !ok {
		g.Leader = ids[0]
	}
	g.Protocol = ""
	for _, p := range g.Members[g.Leader].Protocols {
		all := true
		for _, m := range g.Members {
			all = all && slices.ContainsFunc(m.Protocols, func(q offsets.ClassicProtocol) bool { return q.Name == p.Name })
		}
		if all {
			g.Protocol = p.Name
			break
		}
	}
	g.Generation++
	g.State, g.Assignments = offsets.ClassicCompletingRebalance, nil
}

// joinClientAssigned is JoinGroup for a client-assigned group: record the
// member's protocols, begin a rebalance if this changes the group, and
// wait until the round completes.
//
// A static member's new process (takeover) replaces the member of its
// instance under its new id, keeping its assignment: a follower's restart
// does not rebalance the group; the leader's does, since only a leader
// that ran the assignor knows the assignment's state.
func (c *conn) joinClientAssigned(ctx context.Context, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse, takeover bool) (kmsg.Response, error) {
	id, inst := req.MemberID, instanceOf(req.InstanceID)
	switch n, err := c.s.b.LiveMemberCount(ctx, req.Group); {
	case err != nil:
		resp.ErrorCode = classicErrorCode(err)
		return resp, nil
	case n > 0:
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return resp, nil
	}
	var round int32
	g, err := c.classicUpdate(ctx, req.Group, func(g *offsets.ClassicGroup, now int64) error {
		if g.ProtocolType != "" && len(g.Members) > 0 && g.ProtocolType != req.ProtocolType {
			return fmt.Errorf("%w: the group's members use protocol type %s", offsets.ErrGroupProtocol, g.ProtocolType)
		}
		g.ProtocolType = req.ProtocolType
		m := &offsets.ClassicMember{ClientID: c.clientID, Principal: c.id.Principal,
			SessionTimeoutMs: req.SessionTimeoutMillis, RebalanceTimeoutMs: max(req.RebalanceTimeoutMillis, req.SessionTimeoutMillis),
			DeadlineMs: now + int64(req.SessionTimeoutMillis)}
		for _, p := range req.Protocols {
			m.Protocols = append(m.Protocols, offsets.ClassicProtocol{Name: p.Name, Metadata: p.Metadata})
		}
		m.InstanceID = inst
		if prev := instanceMember(g, inst); prev != "" && prev != id {
			if !takeover {
				return errFencedInstance
			}
			replaceMember(g, prev, id)
		}
		if old, ok := g.Members[id]; ok && old.Principal != m.Principal {
			return fmt.Errorf("%w: %s belongs to another principal", offsets.ErrUnknownMember, id)
		}
		old, known := g.Members[id]
		if g.Members == nil {
			g.Members = map[string]*offsets.ClassicMember{}
		}
		g.Members[id] = m
		// A new member, changed metadata, or the leader rejoining: everyone
		// rejoins (as Kafka does). A follower rejoining unchanged gets the
		// current generation back.
		same := known && slices.EqualFunc(old.Protocols, m.Protocols, func(a, b offsets.ClassicProtocol) bool {
			return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
		})
		if !same || id == g.Leader || g.State == offsets.ClassicEmpty {
			beginRebalance(g, now)
		}
		if g.State == offsets.ClassicPreparingRebalance || !known {
			m.JoinedRound = g.Round
		} else {
			m.JoinedRound = old.JoinedRound
		}
		round = g.Round
		maybeComplete(g)
		return nil
	})
	if errors.Is(err, errFencedInstance) {
		resp.ErrorCode = kerr.FencedInstanceID.Code
		return resp, nil
	}
	if err != nil {
		resp.ErrorCode = classicErrorCode(err)
		return resp, nil
	}
	for {
		if g.Round != round {
			resp.ErrorCode = kerr.RebalanceInProgress.Code
			return resp, nil
		}
		if _, ok := g.Members[id]; !ok {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return resp, nil
		}
		if g.State == offsets.ClassicCompletingRebalance || g.State == offsets.ClassicStable {
			break
		}
		select {
		case <-ctx.Done():
			resp.ErrorCode = kerr.RebalanceInProgress.Code
			return resp, nil
		case <-time.After(classicPoll):
		}
		if g, err = c.classicRead(ctx, req.Group); err == nil && g != nil && classicDue(g, nowMs()) {
			// A session ended, or the round's deadline passed: whichever
			// member waits removes the dead and completes the round.
			g, err = c.classicUpdate(ctx, req.Group, func(*offsets.ClassicGroup, int64) error { return nil })
		}
		if err == nil && g == nil {
			err = offsets.ErrUnknownMember
		}
		if err != nil {
			resp.ErrorCode = classicErrorCode(err)
			return resp, nil
		}
	}
	resp.Generation, resp.MemberID, resp.LeaderID = g.Generation, id, g.Leader
	resp.ProtocolType, resp.Protocol = strp(g.ProtocolType), strp(g.Protocol)
	if id == g.Leader {
		ids := make([]string, 0, len(g.Members))
		for mid := range g.Members {
			ids = append(ids, mid)
		}
		slices.Sort(ids)
		for _, mid := range ids {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = mid
			for _, p := range g.Members[mid].Protocols {
				if p.Name == g.Protocol {
					jm.ProtocolMetadata = p.Metadata
				}
			}
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp, nil
}

// syncClientAssigned is SyncGroup: the leader installs its assignment;
// every member waits for it and receives its own part.
func (c *conn) syncClientAssigned(ctx context.Context, req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) (kmsg.Response, error) {
	check := func(g *offsets.ClassicGroup) int16 {
		switch _, ok := g.Members[req.MemberID]; {
		case !ok:
			return unknownOrFenced(g, req.InstanceID)
		case g.Generation != req.Generation:
			return kerr.IllegalGeneration.Code
		case g.State == offsets.ClassicPreparingRebalance:
			return kerr.RebalanceInProgress.Code
		}
		return 0
	}
	var code int16
	g, err := c.classicUpdate(ctx, req.Group, func(g *offsets.ClassicGroup, now int64) error {
		if code = check(g); code != 0 {
			return errRoundMoved
		}
		g.Members[req.MemberID].DeadlineMs = now + int64(g.Members[req.MemberID].SessionTimeoutMs)
		if req.MemberID == g.Leader && g.State == offsets.ClassicCompletingRebalance {
			g.Assignments = map[string][]byte{}
			for _, a := range req.GroupAssignment {
				if _, ok := g.Members[a.MemberID]; ok {
					g.Assignments[a.MemberID] = a.MemberAssignment
				}
			}
			g.State = offsets.ClassicStable
		}
		return nil
	})
	for {
		switch {
		case errors.Is(err, errRoundMoved):
			resp.ErrorCode = code
			return resp, nil
		case err != nil:
			resp.ErrorCode = classicErrorCode(err)
			return resp, nil
		}
		if code = check(g); code != 0 {
			resp.ErrorCode = code
			return resp, nil
		}
		if g.State == offsets.ClassicStable {
			resp.ProtocolType, resp.Protocol = strp(g.ProtocolType), strp(g.Protocol)
			resp.MemberAssignment = g.Assignments[req.MemberID]
			if resp.MemberAssignment == nil {
				resp.MemberAssignment = []byte{}
			}
			return resp, nil
		}
		select {
		case <-ctx.Done():
			resp.ErrorCode = kerr.RebalanceInProgress.Code
			return resp, nil
		case <-time.After(classicPoll):
		}
		g, err = c.classicRead(ctx, req.Group)
		if err == nil && g == nil {
			err = offsets.ErrUnknownMember
		}
	}
}

// heartbeatClientAssigned renews the member's session (a write only once
// a quarter of it has passed) and says whether a rebalance is under way.
func (c *conn) heartbeatClientAssigned(ctx context.Context, req *kmsg.HeartbeatRequest, resp *kmsg.HeartbeatResponse) (kmsg.Response, error) {
	if g, err := c.classicRead(ctx, req.Group); err == nil && g != nil && g.State == offsets.ClassicStable && g.Generation == req.Generation {
		now := nowMs()
		m, ok := g.Members[req.MemberID]
		fresh := true
		for _, o := range g.Members {
			fresh = fresh && o.DeadlineMs > now
		}
		if ok && fresh && m.DeadlineMs-now > int64(m.SessionTimeoutMs)*3/4 {
			return resp, nil // nothing to renew or expire yet
		}
	}
	var code int16
	_, err := c.classicUpdate(ctx, req.Group, func(g *offsets.ClassicGroup, now int64) error {
		m, ok := g.Members[req.MemberID]
		switch {
		case !ok:
			code = unknownOrFenced(g, req.InstanceID)
		case g.Generation != req.Generation:
			code = kerr.IllegalGeneration.Code
		case g.State == offsets.ClassicPreparingRebalance:
			code = kerr.RebalanceInProgress.Code
		default:
			code = 0
		}
		if ok {
			m.DeadlineMs = now + int64(m.SessionTimeoutMs)
		}
		return nil
	})
	if err != nil {
		code = classicErrorCode(err)
	}
	resp.ErrorCode = code
	return resp, nil
}

// leaveClientAssigned removes members (a static one also by its instance
// id alone); the rest rebalance.
func (c *conn) leaveClientAssigned(ctx context.Context, group string, ids []string, instances []*string) (map[string]int16, error) {
	codes := map[string]int16{}
	_, err := c.classicUpdate(ctx, group, func(g *offsets.ClassicGroup, now int64) error {
		for i, id := range ids {
			inst := instanceAt(instances, i)
			if prev := instanceMember(g, instanceOf(inst)); id == "" && prev != "" {
				id = prev
			}
			if _, ok := g.Members[id]; !ok {
				codes[ids[i]] = unknownOrFenced(g, inst)
				continue
			}
			codes[ids[i]] = 0
			delete(g.Members, id)
		}
		if len(g.Members) == 0 {
			g.State, g.Leader, g.Assignments = offsets.ClassicEmpty, "", nil
		} else {
			if g.State == offsets.ClassicPreparingRebalance {
				maybeComplete(g)
			} else {
				beginRebalance(g, now)
			}
		}
		return nil
	})
	return codes, err
}

// clientAssignedMember reports whether member (or a static member of
// instance) is in the group's client-assigned membership (then the
// classic requests are served by the functions above).
func (c *conn) clientAssignedMember(ctx context.Context, group, member string, instance *string) bool {
	g, err := c.classicRead(ctx, group)
	if err != nil || g == nil {
		return false
	}
	_, ok := g.Members[member]
	return ok || instanceMember(g, instanceOf(instance)) != ""
}

// errFencedInstance: a static member's request from a process that was
// replaced.
var errFencedInstance = errors.New("another process of this group.instance.id took the member over")

// instanceMember is the id of the static member of instance ("" if none).
func instanceMember(g *offsets.ClassicGroup, instance string) string {
	if instance == "" {
		return ""
	}
	for id, m := range g.Members {
		if m.InstanceID == instance {
			return id
		}
	}
	return ""
}

// unknownOrFenced answers a request whose member id is not in the group:
// FENCED_INSTANCE_ID when its instance's member has another id now.
func unknownOrFenced(g *offsets.ClassicGroup, instance *string) int16 {
	if instanceMember(g, instanceOf(instance)) != "" {
		return kerr.FencedInstanceID.Code
	}
	return kerr.UnknownMemberID.Code
}

// replaceMember moves a static member to its new process's id, with its
// part of the assignment; a replaced leader makes the group rebalance.
func replaceMember(g *offsets.ClassicGroup, from, to string) {
	g.Members[to] = g.Members[from]
	delete(g.Members, from)
	if a, ok := g.Assignments[from]; ok {
		g.Assignments[to] = a
		delete(g.Assignments, from)
	}
	if g.Leader == from {
		g.Leader = to
		beginRebalance(g, nowMs())
	}
}
