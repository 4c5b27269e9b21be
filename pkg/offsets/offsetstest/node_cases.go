package offsetstest

import (
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// nodeCases check the registry of Kafka listener nodes.
var nodeCases = map[string]func(*testing.T, *env){
	"RegistrationsLapseUnlessRenewed": func(t *testing.T, e *env) {
		must(t, e.store.RegisterNode(e.ctx, offsets.Node{ID: 1, Host: "a.example", Port: 9092}, 10*time.Second))
		must(t, e.store.RegisterNode(e.ctx, offsets.Node{ID: 2, Host: "b.example", Port: 9092, Rack: "r2"}, 10*time.Second))
		nodes, err := e.store.LiveNodes(e.ctx)
		must(t, err)
		if len(nodes) != 2 || nodes[0].ID != 1 || nodes[1].ID != 2 || nodes[1].Rack != "r2" {
			t.Fatalf("live nodes %+v", nodes)
		}
		e.clock.Advance(6 * time.Second)
		must(t, e.store.RegisterNode(e.ctx, offsets.Node{ID: 2, Host: "b.example", Port: 9093}, 10*time.Second))
		e.clock.Advance(6 * time.Second)
		nodes, err = e.store.LiveNodes(e.ctx)
		must(t, err)
		if len(nodes) != 1 || nodes[0].ID != 2 || nodes[0].Port != 9093 {
			t.Fatalf("after node 1 lapsed: %+v", nodes)
		}
		must(t, e.store.DeregisterNode(e.ctx, 2))
		nodes, err = e.store.LiveNodes(e.ctx)
		must(t, err)
		if len(nodes) != 0 {
			t.Fatalf("after deregistering: %+v", nodes)
		}
	},
	"InvalidRegistrationsAreRefused": func(t *testing.T, e *env) {
		for _, n := range []offsets.Node{{ID: -1, Host: "a", Port: 1}, {ID: 1, Port: 1}, {ID: 1, Host: "a", Port: 70000}} {
			if err := e.store.RegisterNode(e.ctx, n, time.Second); err == nil {
				t.Errorf("registered %+v", n)
			}
		}
	},
}
