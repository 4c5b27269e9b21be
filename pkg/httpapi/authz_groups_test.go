package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// TestGroupMembersBoundToPrincipals: alice and bob share group "shared"
// but not topics (alice reads ta*, bob tb*). Bob consumes tb-secret as
// member bob-c1. Then, route by route, alice may not act as bob's member
// (heartbeat, poll, rejoin to fence him, commit), read tb-secret through
// the group, or learn bob's member id or tb-secret's offsets from group
// views; and bob is unharmed.
func TestGroupMembersBoundToPrincipals(t *testing.T) {
	const aliceToken, bobToken = "sbt_alice-0000000000000001", "sbt_bob-00000000000000000002"
	pol, err := auth.ParsePolicy([]byte(`{
		"principals": {
			"alice": {"grants": [{"ops": ["consume", "produce"], "topics": ["ta*"], "groups": ["shared"]}]},
			"bob":   {"grants": [{"ops": ["consume", "produce"], "topics": ["tb*"], "groups": ["shared"]}]}
		},
		"tokens": [{"principal": "alice", "sha256": "` + auth.HashToken(aliceToken) + `"},
		           {"principal": "bob", "sha256": "` + auth.HashToken(bobToken) + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	authz, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(offsets.New(memtable.New()), membucket.New(), broker.Config{})
	t.Cleanup(b.Drain)
	for _, name := range []string{"ta-public", "tb-secret"} {
		if _, err := b.CreateTopic(context.Background(), name, 1, offsets.DefaultTopicConfig()); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.New(b, httpapi.Options{Auth: authz}).Handler())
	t.Cleanup(srv.Close)
	call := func(token, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, m := call(bobToken, "POST", "/v1/topics/tb-secret/records", `{"records":[{"value":"bob's secret"}]}`); st != 200 {
		t.Fatalf("bob's produce: %d %v", st, m)
	}
	st, m := call(bobToken, "POST", "/v1/groups/shared/poll", `{"member_id":"bob-c1","member_epoch":0,"topics":["tb-secret"],"auto_offset_reset":"earliest","wait_ms":0}`)
	if st != 200 {
		t.Fatalf("bob joins: %d %v", st, m)
	}
	bobEpoch := m["member_epoch"].(float64)
	for range 3 { // converge: bob owns tb-secret/0
		_, m = call(bobToken, "POST", "/v1/groups/shared/poll", `{"member_id":"bob-c1","member_epoch":`+jsonNum(bobEpoch)+`,"owned":[{"topic":"tb-secret","partitions":[0]}],"wait_ms":0,"commit":false}`)
		bobEpoch = m["member_epoch"].(float64)
	}
	epoch := jsonNum(bobEpoch)

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"heartbeat as bob's member", "POST", "/v1/groups/shared/heartbeat", `{"member_id":"bob-c1","member_epoch":` + epoch + `}`, 404, "unknown_member_id"},
		{"poll as bob's member, topics not named", "POST", "/v1/groups/shared/poll", `{"member_id":"bob-c1","member_epoch":` + epoch + `,"wait_ms":0}`, 404, "unknown_member_id"},
		{"rejoin with bob's member id to fence him", "POST", "/v1/groups/shared/heartbeat", `{"member_id":"bob-c1","member_epoch":0,"topics":["ta-public"]}`, 404, "unknown_member_id"},
		{"leave as bob's member", "POST", "/v1/groups/shared/heartbeat", `{"member_id":"bob-c1","member_epoch":-1}`, 404, "unknown_member_id"},
		{"commit as bob's member", "POST", "/v1/groups/shared/offsets", `{"member_id":"bob-c1","member_epoch":` + epoch + `,"offsets":[{"topic":"ta-public","partition":0,"offset":0}]}`, 404, "unknown_member_id"},
		{"commit on bob's topic", "POST", "/v1/groups/shared/offsets", `{"offsets":[{"topic":"tb-secret","partition":0,"offset":0}]}`, 403, "forbidden"},
		{"subscribe to bob's topic", "POST", "/v1/groups/shared/heartbeat", `{"member_id":"alice-c1","member_epoch":0,"topics":["tb-secret"]}`, 403, "forbidden"},
		{"read bob's topic directly", "GET", "/v1/topics/tb-secret/partitions/0/records", "", 403, "forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, m := call(aliceToken, c.method, c.path, c.body)
			if st != c.status || m["code"] != c.code {
				t.Fatalf("%d %v, want %d %s", st, m, c.status, c.code)
			}
			if strings.Contains(m["detail"].(string), "bob's secret") {
				t.Fatalf("the answer leaks a record: %v", m)
			}
		})
	}
	// Views: alice sees neither bob's member id nor tb-secret.
	for _, path := range []string{"/v1/groups/shared", "/v1/groups/shared/lag", "/v1/groups/shared/offsets"} {
		st, m := call(aliceToken, "GET", path, "")
		raw, _ := json.Marshal(m)
		if st != 200 || strings.Contains(string(raw), "bob-c1") || strings.Contains(string(raw), "tb-secret") {
			t.Fatalf("alice's view of %s: %d %s", path, st, raw)
		}
	}
	// Bob's own view shows his member and topic; he was not fenced.
	_, m = call(bobToken, "GET", "/v1/groups/shared", "")
	if raw, _ := json.Marshal(m); !strings.Contains(string(raw), "bob-c1") || !strings.Contains(string(raw), "tb-secret") {
		t.Fatalf("bob's view: %s", raw)
	}
	if st, m := call(bobToken, "POST", "/v1/groups/shared/heartbeat", `{"member_id":"bob-c1","member_epoch":`+epoch+`}`); st != 200 {
		t.Fatalf("bob after alice's attempts: %d %v", st, m)
	}
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
