package httpapi_test

import (
	"fmt"
	"testing"
)

func TestGroupsOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.createTopic("orders", 4)
	produceN(e, "orders", 0, 5)
	produceN(e, "orders", 1, 3)

	// Join, then heartbeat with what we own until stable.
	hb := e.want(e.do("POST", "/v1/groups/g1/heartbeat", map[string]any{"member_id": "m1", "member_epoch": 0, "topics": []string{"orders"}, "session_timeout_ms": 10000}), 200)
	if hb["member_id"] != "m1" || hb["member_epoch"].(float64) < 1 || len(hb["assignment"].([]any)) != 1 {
		t.Fatalf("join %v", hb)
	}
	epoch := hb["member_epoch"]
	owned := hb["assignment"]
	if hb["heartbeat_interval_ms"].(float64) > 5000 {
		t.Fatalf("interval %v", hb["heartbeat_interval_ms"])
	}

	// Poll: fetch from assigned partitions (earliest, since nothing committed).
	poll := e.want(e.do("POST", "/v1/groups/g1/poll", map[string]any{"member_id": "m1", "member_epoch": epoch, "owned": owned, "auto_offset_reset": "earliest", "format": "auto"}), 200)
	if n := len(poll["records"].([]any)); n != 8 {
		t.Fatalf("polled %d records, want 8: %v", n, poll)
	}
	r0 := poll["records"].([]any)[0].(map[string]any)
	if r0["topic"] != "orders" {
		t.Fatalf("poll record without topic: %v", r0)
	}
	positions := poll["offsets"]
	// The next poll commits those positions.
	poll = e.want(e.do("POST", "/v1/groups/g1/poll", map[string]any{"member_id": "m1", "member_epoch": epoch, "owned": owned, "offsets": positions}), 200)
	if len(poll["records"].([]any)) != 0 || poll["commit_error"] != nil {
		t.Fatalf("second poll %v", poll)
	}
	offs := e.want(e.do("GET", "/v1/groups/g1/offsets", nil), 200)["offsets"].([]any)
	if len(offs) != 4 {
		t.Fatalf("committed %v", offs)
	}

	lag := e.want(e.do("GET", "/v1/groups/g1/lag", nil), 200)
	if lag["total_lag"] != 0.0 || len(lag["partitions"].([]any)) != 4 {
		t.Fatalf("lag %v", lag)
	}
	produceN(e, "orders", 2, 7)
	lag = e.want(e.do("GET", "/v1/groups/g1/lag", nil), 200)
	if lag["total_lag"] != 7.0 || lag["max_lag"] != 7.0 {
		t.Fatalf("lag after producing 7 %v", lag)
	}
	for _, p := range lag["partitions"].([]any) {
		pl := p.(map[string]any)
		if pl["partition"] == 2.0 && (pl["member_id"] != "m1" || pl["lag"] != 7.0 || pl["committed_offset"] != 0.0) {
			t.Fatalf("partition 2 lag %v", pl)
		}
	}

	// Commits: errors map to their codes and change nothing.
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"member_id": "nobody", "member_epoch": 1, "offsets": []any{map[string]any{"topic": "orders", "partition": 0, "offset": 1}}}), 404, "unknown_member_id")
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"member_id": "m1", "member_epoch": 99, "offsets": []any{map[string]any{"topic": "orders", "partition": 0, "offset": 1}}}), 409, "stale_member_epoch")
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"offsets": []any{map[string]any{"topic": "orders", "partition": 0, "offset": 1}}}), 409, "group_not_empty")
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"member_id": "m1", "member_epoch": epoch, "offsets": []any{map[string]any{"topic": "nope", "partition": 0, "offset": 1}}}), 404, "unknown_topic")
	e.want(e.do("POST", "/v1/groups/g1/offsets/reset", map[string]any{"topic": "orders", "to": "earliest"}), 409, "group_not_empty")
	e.want(e.do("DELETE", "/v1/groups/g1", nil), 409, "group_not_empty")

	// A second member: m1 must give up partitions before m2 gets them.
	hb2 := e.want(e.do("POST", "/v1/groups/g1/heartbeat", map[string]any{"member_id": "m2", "member_epoch": 0, "topics": []string{"orders"}}), 200)
	if len(hb2["assignment"].([]any)) != 0 {
		t.Fatalf("m2 got partitions m1 still owns: %v", hb2)
	}
	hb = e.want(e.do("POST", "/v1/groups/g1/heartbeat", map[string]any{"member_id": "m1", "member_epoch": epoch, "owned": owned}), 200)
	keep := hb["assignment"].([]any)[0].(map[string]any)["partitions"].([]any)
	if len(keep) != 2 {
		t.Fatalf("m1 told to keep %v", keep)
	}
	// m1 commits a partition it is giving up, then releases it.
	dropped := 3.0
	for _, p := range []float64{0, 1, 2, 3} {
		found := false
		for _, k := range keep {
			found = found || k == p
		}
		if !found {
			dropped = p
		}
	}
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"member_id": "m1", "member_epoch": hb["member_epoch"], "offsets": []any{map[string]any{"topic": "orders", "partition": dropped, "offset": 0, "metadata": "bye"}}}), 200)
	hb = e.want(e.do("POST", "/v1/groups/g1/heartbeat", map[string]any{"member_id": "m1", "member_epoch": hb["member_epoch"], "owned": hb["assignment"]}), 200)
	hb2 = e.want(e.do("POST", "/v1/groups/g1/heartbeat", map[string]any{"member_id": "m2", "member_epoch": hb2["member_epoch"], "owned": hb2["assignment"]}), 200)
	if parts := hb2["assignment"].([]any)[0].(map[string]any)["partitions"].([]any); len(parts) != 2 {
		t.Fatalf("m2 assignment %v", hb2)
	}
	// Now m1 no longer owns the dropped partition.
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"member_id": "m1", "member_epoch": hb["member_epoch"], "offsets": []any{map[string]any{"topic": "orders", "partition": dropped, "offset": 0}}}), 409, "partition_not_assigned")

	desc := e.want(e.do("GET", "/v1/groups/g1", nil), 200)
	if desc["state"] != "stable" || len(desc["members"].([]any)) != 2 || desc["assignor"] != "uniform" {
		t.Fatalf("describe %v", desc)
	}
	list := e.want(e.do("GET", "/v1/groups", nil), 200)
	if fmt.Sprint(list["groups"]) != "[g1]" {
		t.Fatalf("list %v", list)
	}

	// Everyone leaves; then admin operations work.
	for _, m := range []string{"m1", "m2"} {
		out := e.want(e.do("POST", "/v1/groups/g1/heartbeat", map[string]any{"member_id": m, "member_epoch": -1}), 200)
		if out["member_epoch"] != -1.0 {
			t.Fatalf("leave %v", out)
		}
	}
	reset := e.want(e.do("POST", "/v1/groups/g1/offsets/reset", map[string]any{"topic": "orders", "partitions": []int{0}, "to": "offset", "offset": 2}), 200)
	for _, o := range reset["offsets"].([]any) {
		om := o.(map[string]any)
		if om["partition"] == 0.0 && om["offset"] != 2.0 {
			t.Fatalf("reset %v", reset)
		}
	}
	e.want(e.do("POST", "/v1/groups/g1/offsets", map[string]any{"offsets": []any{map[string]any{"topic": "orders", "partition": 1, "offset": 3, "metadata": "admin"}}}), 200)
	e.want(e.do("DELETE", "/v1/groups/g1", nil), 204)
	e.want(e.do("GET", "/v1/groups/g1", nil), 404, "unknown_group")
	e.want(e.do("DELETE", "/v1/groups/g1", nil), 404, "unknown_group")
}

func TestGroupBadInput(t *testing.T) {
	e := newEnv(t)
	e.createTopic("orders", 2)
	for _, c := range []struct {
		path, body  string
		status      int
		code, field string
	}{
		{"/v1/groups/g/heartbeat", `{"member_epoch":0}`, 400, "invalid_request", "topics"},
		{"/v1/groups/g/heartbeat", `{"member_epoch":3}`, 400, "invalid_request", "member_id"},
		{"/v1/groups/g/heartbeat", `{"member_id":"m","member_epoch":-2,"topics":["orders"]}`, 400, "invalid_request", "member_epoch"},
		{"/v1/groups/g/heartbeat", `{"member_id":"bad id","member_epoch":0,"topics":["orders"]}`, 400, "invalid_request", "member_id"},
		{"/v1/groups/g/heartbeat", `{"member_id":"m","member_epoch":0,"topics":["orders"],"session_timeout_ms":10}`, 400, "invalid_request", "session_timeout_ms"},
		{"/v1/groups/g/heartbeat", `{"member_id":"m","member_epoch":0,"topics":["orders"],"assignor":"roundrobin"}`, 400, "invalid_request", "assignor"},
		{"/v1/groups/g/heartbeat", `{"member_id":"m","member_epoch":0,"topics":["bad topic"]}`, 400, "invalid_request", "topics[0]"},
		{"/v1/groups/g/heartbeat", `{"member_id":"m","member_epoch":5}`, 404, "unknown_member_id", ""},
		{"/v1/groups/bad%20g/heartbeat", `{"member_epoch":0,"topics":["orders"]}`, 400, "invalid_request", "group"},
		{"/v1/groups/g/poll", `{"member_id":"m","member_epoch":0,"topics":["orders"],"auto_offset_reset":"middle"}`, 400, "invalid_request", "auto_offset_reset"},
		{"/v1/groups/g/poll", `{"member_id":"m","member_epoch":0,"topics":["orders"],"wait_ms":99999}`, 400, "invalid_request", "wait_ms"},
		{"/v1/groups/g/offsets", `{"offsets":[]}`, 400, "invalid_request", "offsets"},
		{"/v1/groups/g/offsets", `{"offsets":[{"topic":"orders","partition":0,"offset":-1}]}`, 400, "invalid_request", "offsets[0].offset"},
		{"/v1/groups/g/offsets", `{"offsets":[{"topic":"orders","partition":9,"offset":1}]}`, 404, "unknown_partition", "offsets[0]"},
		{"/v1/groups/g/offsets/reset", `{"topic":"orders","to":"sideways"}`, 400, "invalid_request", "to"},
		{"/v1/groups/g/offsets/reset", `{"topic":"orders","to":"offset"}`, 400, "invalid_request", "offset"},
	} {
		m := e.want(e.do("POST", c.path, c.body), c.status, c.code)
		if c.field != "" && m["field"] != c.field {
			t.Errorf("%s %s: field %v, want %s", c.path, c.body, m["field"], c.field)
		}
	}
	if list := e.want(e.do("GET", "/v1/groups", nil), 200); len(list["groups"].([]any)) != 0 {
		t.Fatalf("bad input created groups: %v", list)
	}
	e.want(e.do("GET", "/v1/groups/none/lag", nil), 404, "unknown_group")
}
