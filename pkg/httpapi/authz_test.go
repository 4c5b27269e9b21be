package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/authtest"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// authServer is a seeded API with the authtest policy.
func authServer(t testing.TB, authz *auth.Authorizer, log *slog.Logger) (*httpapi.Server, http.Handler) {
	store := offsets.New(memtable.New())
	bucket := membucket.New()
	b := broker.New(store, bucket, broker.Config{})
	t.Cleanup(b.Drain)
	authtest.Seed(t, b)
	srv := httpapi.New(b, httpapi.Options{Auth: authz, Logger: log, Compactor: compactor.New(store, bucket, compactor.Config{}),
		Console: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console") })})
	return srv, srv.Handler()
}

func newAuthz(t testing.TB) (*auth.Authorizer, *authtest.Signer) {
	pol, signer := authtest.Policy(t)
	a, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	return a, signer
}

type credCase struct {
	name   string
	header func(granted string) string
	want   func(s authtest.Sample) string // "2xx", "401", "403"
}

func credCases(t testing.TB, signer *authtest.Signer) []credCase {
	now := time.Now()
	allowed := func(s authtest.Sample) string { return "2xx" }
	needsAuth := func(code string) func(authtest.Sample) string {
		return func(s authtest.Sample) string {
			if s.Granted == "" {
				return "2xx" // public
			}
			return code
		}
	}
	principal := func(g string) string {
		if g == "" {
			return "admin"
		}
		return g
	}
	return []credCase{
		{"no credentials", func(string) string { return "" }, needsAuth("401")},
		{"bad token", func(string) string { return "Bearer sbt_not-a-real-token" }, needsAuth("401")},
		{"expired JWT", func(g string) string {
			return "Bearer " + signer.JWT(t, principal(g), authtest.Audience, now.Add(-time.Hour))
		}, needsAuth("401")},
		{"wrong audience", func(g string) string {
			return "Bearer " + signer.JWT(t, principal(g), "someone-else", now.Add(time.Hour))
		}, needsAuth("401")},
		{"principal without the permission", func(string) string { return "Bearer " + authtest.NobodyToken }, func(s authtest.Sample) string {
			if s.Granted == "" || s.Granted == "nobody" {
				return "2xx" // public, or a list any principal may see (filtered)
			}
			return "403"
		}},
		{"principal with it", func(g string) string {
			switch g {
			case "":
				return ""
			case "reader":
				return "Bearer " + signer.JWT(t, g, authtest.Audience, now.Add(time.Hour))
			}
			return "Bearer " + map[string]string{"writer": authtest.WriterToken, "admin": authtest.AdminToken, "nobody": authtest.NobodyToken}[g]
		}, allowed},
		// A JWT cannot take a static-token principal's grants by choosing
		// its subject: sub "admin" is principal "jwt:admin", which has none.
		{"JWT named like a token principal", func(string) string {
			return "Bearer " + signer.JWT(t, "admin", authtest.Audience, now.Add(time.Hour))
		}, func(s authtest.Sample) string {
			if s.Granted == "" || (s.Granted == "nobody" && s.Body == "") {
				return "2xx" // public, or a list any principal may see (filtered)
			}
			return "403"
		}},
	}
}

func class(status int) string {
	switch {
	case status == 401:
		return "401"
	case status == 403:
		return "403"
	case status >= 200 && status < 400:
		return "2xx"
	}
	return http.StatusText(status)
}

// TestRouteTableAuthorization: every route the router serves, with every
// kind of credential, answers exactly 401, 403 or success. Routes come
// from the router, so a new route without a sample (and so without a
// decision about who may call it) fails here.
func TestRouteTableAuthorization(t *testing.T) {
	authz, signer := newAuthz(t)
	srv, _ := authServer(t, authz, nil)
	cases := credCases(t, signer)
	for _, rt := range srv.Routes() {
		key := rt.Method + " " + rt.Path
		s, ok := authtest.Samples[key]
		if !ok {
			t.Errorf("route %s has no sample in internal/authtest: say who may call it", key)
			continue
		}
		for _, c := range cases {
			_, h := authServer(t, authz, nil) // fresh data: deletes and resets must not affect the next case
			req := httptest.NewRequest(rt.Method, s.Path, strings.NewReader(s.Body))
			if s.Body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if hv := c.header(s.Granted); hv != "" {
				req.Header.Set("Authorization", hv)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got, want := class(rec.Code), c.want(s); got != want {
				t.Errorf("%s with %s: %d (%s), want %s: %s", key, c.name, rec.Code, got, want, rec.Body.String())
				continue
			}
			if rec.Code == 401 || rec.Code == 403 {
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("%s with %s: content type %q, want problem+json", key, c.name, ct)
				}
			}
		}
	}
	for key := range authtest.Samples {
		found := false
		for _, rt := range srv.Routes() {
			found = found || rt.Method+" "+rt.Path == key
		}
		if !found {
			t.Errorf("sample %s names no route", key)
		}
	}
}

// TestForbiddenRevealsNothing: a principal without permission gets the
// same answer for a topic that exists and one that does not, and lists
// show only what the principal may read.
func TestForbiddenRevealsNothing(t *testing.T) {
	authz, _ := newAuthz(t)
	_, h := authServer(t, authz, nil)
	get := func(path, token string) (int, map[string]any) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	c1, p1 := get("/v1/topics/orders", authtest.NobodyToken)
	c2, p2 := get("/v1/topics/no-such-topic", authtest.NobodyToken)
	if c1 != 403 || c2 != 403 || p1["code"] != p2["code"] || strings.ReplaceAll(p1["detail"].(string), "orders", "X") != strings.ReplaceAll(p2["detail"].(string), "no-such-topic", "X") {
		t.Fatalf("existing: %d %v; missing: %d %v", c1, p1, c2, p2)
	}
	_, list := get("/v1/topics", authtest.NobodyToken)
	if topics := list["topics"].([]any); len(topics) != 0 {
		t.Fatalf("nobody sees %v", topics)
	}
	_, list = get("/v1/topics", authtest.WriterToken)
	if topics := list["topics"].([]any); len(topics) != 1 {
		t.Fatalf("writer sees %v", topics)
	}
	// A consumer may not subscribe its group to a topic it was not granted.
	req := httptest.NewRequest("POST", "/v1/groups/billing/heartbeat", strings.NewReader(`{"member_id":"m","member_epoch":0,"topics":["secret"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+authtest.WriterToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Fatalf("heartbeat for an ungranted group: %d", rec.Code)
	}
}

// TestTokensNeverLogged runs requests with valid and invalid tokens and
// JWTs through a debug-level logger and greps the log for them.
func TestTokensNeverLogged(t *testing.T) {
	authz, signer := newAuthz(t)
	var logs bytes.Buffer
	_, h := authServer(t, authz, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	jwtOK := signer.JWT(t, "reader", authtest.Audience, time.Now().Add(time.Hour))
	jwtOld := signer.JWT(t, "reader", authtest.Audience, time.Now().Add(-time.Hour))
	secrets := []string{authtest.WriterToken, authtest.AdminToken, "sbt_wrong-token-xyz", jwtOK, jwtOld}
	for _, tok := range secrets {
		for _, path := range []string{"/v1/topics/orders", "/v1/topics", "/v1/nope"} {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the test proves nothing")
	}
	for _, s := range secrets {
		for _, part := range []string{s, s[len(s)/2:]} {
			if strings.Contains(logs.String(), part) {
				t.Fatalf("a credential appears in the logs:\n%s", logs.String())
			}
		}
	}
}
