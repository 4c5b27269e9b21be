package kafkaapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streambed/streambed/pkg/broker"
)

// Static membership (KIP-345): a consumer with a group.instance.id keeps
// its place in a broker-assigned group across restarts. Its state lives
// under a member id derived from the instance id, so a restarted process
// (which arrives with no member id, or a new one) takes the member over
// with its epoch and assignment: the group does not rebalance, and the
// other members notice nothing. Each process gets a member id of its own;
// the one last given is recorded with the member, and requests carrying
// an earlier one are answered FENCED_INSTANCE_ID, so a process that was
// replaced (a zombie) cannot commit or heartbeat for the member any more.
// A static member does not leave when it closes (Kafka's clients skip the
// LeaveGroup, or send member epoch -2); its session timeout ends it.
//
// Client-assigned groups (a custom assignor such as Kafka Streams') keep
// static members in their own state: see joinClientAssigned.

// staticStoreID is the member id a static member's state lives under:
// fixed-length and of safe characters, whatever the instance id.
func staticStoreID(instance string) string {
	sum := sha256.Sum256([]byte(instance))
	return "static-" + hex.EncodeToString(sum[:16])
}

// newStaticMemberID is the member id a process of a static member is
// given, as Kafka forms it.
func newStaticMemberID(instance string) string {
	return instance + "-" + rand.Text()
}

func instanceOf(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// memberKey is the id a group request's member has in the store. A static
// member's request must carry the member id its current process was
// given: an unknown or ended member is UNKNOWN_MEMBER_ID, another process's
// id FENCED_INSTANCE_ID.
func (c *conn) memberKey(ctx context.Context, group, memberID string, instance *string) (string, int16, error) {
	inst := instanceOf(instance)
	if inst == "" {
		return storeMemberID(memberID), 0, nil
	}
	key := staticStoreID(inst)
	_, m, err := c.s.store.GroupMember(ctx, group, key)
	switch {
	case err != nil:
		return key, 0, err
	case m.Version == 0 || !m.Live(nowMs()):
		return key, kerr.UnknownMemberID.Code, nil
	case m.InstanceMemberID != memberID:
		return key, kerr.FencedInstanceID.Code, nil
	}
	return key, 0, nil
}

// memberIdentity is the member id and instance id a described member has
// for Kafka clients: a static member's current process's id.
func memberIdentity(m broker.MemberInfo) (string, *string) {
	if m.InstanceID == "" {
		return kafkaMemberID(m.ID), nil
	}
	return m.InstanceMemberID, &m.InstanceID
}
