package offsets

import (
	"context"
	"fmt"
	"time"
)

// Node is a server that speaks the Kafka protocol, as it registers itself
// for clients to find. Nodes hold no state: any node serves any partition,
// so this registry only says which addresses are alive.
type Node struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// ExpiresMs is when the registration lapses unless renewed.
	ExpiresMs int64 `json:"expires_ms"`
}

func (n *Node) validate() error {
	if n.ID < 0 || n.Host == "" || n.Port <= 0 || n.Port > 65535 {
		return fmt.Errorf("node %d at %q:%d is not a valid registration", n.ID, n.Host, n.Port)
	}
	return nil
}

const pkNodes = "nodes"

func nodeKey(id int32) Key { return Key{pkNodes, fmt.Sprintf("n#%010d", id)} }

// RegisterNode records (or renews) a node's registration for ttl. Several
// nodes may share one id and address (behind one load balancer): the last
// registration wins, which is the same.
func (s *Store) RegisterNode(ctx context.Context, n Node, ttl time.Duration) error {
	exp := s.now().Add(ttl)
	n.ExpiresMs = exp.UnixMilli()
	if err := n.validate(); err != nil {
		return invalidf("%v", err)
	}
	var w tx
	w.putTTL(nodeKey(n.ID), AnyVersion, &n, exp.Add(time.Hour).Unix())
	return s.t.Write(ctx, w.ops...)
}

// DeregisterNode removes a node's registration (on a clean shutdown).
func (s *Store) DeregisterNode(ctx context.Context, id int32) error {
	return s.t.Write(ctx, Delete(nodeKey(id), AnyVersion))
}

// LiveNodes returns the registrations that have not lapsed, by id.
func (s *Store) LiveNodes(ctx context.Context) ([]Node, error) {
	now := s.nowMs()
	var out []Node
	err := s.queryAll(ctx, pkNodes, Prefix("n#"), func(it Item) error {
		var n Node
		if err := decode(it, &n); err != nil {
			return err
		}
		if n.ExpiresMs > now {
			out = append(out, n)
		}
		return nil
	})
	return out, err
}
