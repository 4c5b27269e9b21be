package httpapi_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/authtest"
	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// limitEnv is a server with authentication, over a counting table.
type limitEnv struct {
	url   string
	table *faults.Table
	authz *auth.Authorizer
	b     *broker.Broker
}

func newLimitEnv(t *testing.T, policy string, opts httpapi.Options, cfg broker.Config, clock func() time.Time) *limitEnv {
	t.Helper()
	pol, err := auth.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	aopts := []auth.Option{}
	if clock != nil {
		aopts = append(aopts, auth.WithClock(clock))
	}
	authz, err := auth.New(context.Background(), pol, aopts...)
	if err != nil {
		t.Fatal(err)
	}
	table := faults.WrapTable(memtable.New(), nil)
	if cfg.PollMin == 0 {
		cfg.PollMin, cfg.PollMax = 5*time.Millisecond, 50*time.Millisecond
	}
	b := broker.New(offsets.New(table), membucket.New(), cfg)
	t.Cleanup(b.Drain)
	if _, err := b.CreateTopic(context.Background(), "orders", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	opts.Auth = authz
	if opts.PingInterval == 0 {
		opts.PingInterval = 500 * time.Millisecond
	}
	srv := httptest.NewServer(httpapi.New(b, opts).Handler())
	t.Cleanup(srv.Close)
	return &limitEnv{url: srv.URL, table: table, authz: authz, b: b}
}

const limitsPolicy = `{
	"principals": {
		"writer": {"grants": [{"ops": ["produce", "consume"], "topics": ["orders"]}], "limits": {"requests_per_second": 2, "burst": 2, "streams": 2}},
		"reader": {"grants": [{"ops": ["consume"], "topics": ["orders"]}]}
	},
	"tokens": [{"principal": "writer", "sha256": "` + "%WRITER%" + `"}, {"principal": "reader", "sha256": "` + "%READER%" + `"}]
}`

func policyWithTokens(p string) string {
	return strings.NewReplacer("%WRITER%", auth.HashToken(authtest.WriterToken), "%READER%", auth.HashToken(authtest.NobodyToken)).Replace(p)
}

// sse opens a stream of orders/0 and returns its response (or the
// refusal) and a reader of its lines.
func sse(t *testing.T, url, token string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/topics/orders/partitions/0/records?from=latest", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewScanner(resp.Body)
}

// untilEvent reads lines until one contains want, or the stream ends.
func untilEvent(sc *bufio.Scanner, want string) bool {
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return true
		}
	}
	return false
}

// TestStreamEndsWhenTheCredentialDoes: an SSE stream ends, with an error
// event, once its JWT has expired — and once the policy stops granting
// the topic to a static token.
func TestStreamEndsWhenTheCredentialDoes(t *testing.T) {
	signer := authtest.NewSigner(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	policy := `{"principals":{"jwt:reader":{"grants":[{"ops":["consume"],"topics":["orders"]}]},
		"reader":{"grants":[{"ops":["consume"],"topics":["orders"]}]}},
		"tokens":[{"principal":"reader","sha256":"` + auth.HashToken(authtest.NobodyToken) + `"}],
		"jwt":{"issuer":"` + authtest.Issuer + `","audience":"` + authtest.Audience + `","jwks_file":"` + signer.JWKSFile + `"}}`
	e := newLimitEnv(t, policy, httpapi.Options{}, broker.Config{}, clock)

	resp, sc := sse(t, e.url, signer.JWT(t, "reader", authtest.Audience, now.Add(time.Minute)))
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute) // the JWT expires
	mu.Unlock()
	if !untilEvent(sc, `"code":"unauthenticated"`) {
		t.Fatal("the stream outlived its JWT")
	}

	resp, sc = sse(t, e.url, authtest.NobodyToken)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	pol, _ := auth.ParsePolicy([]byte(`{"principals":{"reader":{"grants":[{"ops":["consume"],"topics":["payments"]}]}},
		"tokens":[{"principal":"reader","sha256":"` + auth.HashToken(authtest.NobodyToken) + `"}]}`))
	if err := e.authz.Reload(context.Background(), pol); err != nil {
		t.Fatal(err)
	}
	if !untilEvent(sc, `"code":"forbidden"`) {
		t.Fatal("the stream outlived its grant")
	}
}

// TestStreamCaps: a server and each principal have a bound on open
// streams; beyond it, 429 with Retry-After.
func TestStreamCaps(t *testing.T) {
	e := newLimitEnv(t, policyWithTokens(limitsPolicy), httpapi.Options{MaxStreams: 3}, broker.Config{}, nil)
	for range 2 {
		if resp, _ := sse(t, e.url, authtest.WriterToken); resp.StatusCode != 200 {
			t.Fatalf("writer's stream: %d", resp.StatusCode)
		}
	}
	resp, _ := sse(t, e.url, authtest.WriterToken)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("writer's third stream (its limit is 2): %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := sse(t, e.url, authtest.NobodyToken); resp.StatusCode != 200 {
		t.Fatalf("reader's stream: %d", resp.StatusCode)
	}
	if resp, _ := sse(t, e.url, authtest.NobodyToken); resp.StatusCode != 429 {
		t.Fatalf("a fourth stream on a server that allows 3: %d", resp.StatusCode)
	}
}

// TestRequestRateLimit: a principal over its rate gets 429 with
// Retry-After; another principal is unaffected.
func TestRequestRateLimit(t *testing.T) {
	e := newLimitEnv(t, policyWithTokens(limitsPolicy), httpapi.Options{}, broker.Config{}, nil)
	get := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", e.url+"/v1/topics/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var codes []int
	for range 5 {
		codes = append(codes, get(authtest.WriterToken).StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[4] != 429 {
		t.Fatalf("writer (2/s, burst 2): %v", codes)
	}
	if r := get(authtest.WriterToken); r.StatusCode != 429 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("429 without Retry-After: %d %v", r.StatusCode, r.Header)
	}
	for range 5 {
		if r := get(authtest.NobodyToken); r.StatusCode != 200 {
			t.Fatalf("reader (no limit): %d", r.StatusCode)
		}
	}
}

// TestIdleStreamsCostTheStoreNothing: twenty idle SSE streams make no
// metadata calls when the broker is the only writer (the embedded store),
// and share one poller otherwise; a record still reaches them all.
func TestIdleStreamsCostTheStoreNothing(t *testing.T) {
	for _, c := range []struct {
		sole     bool
		maxCalls int64
	}{{true, 0}, {false, 60}} {
		e := newLimitEnv(t, policyWithTokens(`{"principals":{"reader":{"grants":[{"ops":["consume","produce"],"topics":["orders"]}],"limits":{"streams":50}}},
			"tokens":[{"principal":"reader","sha256":"%READER%"}]}`), httpapi.Options{PingInterval: time.Hour}, broker.Config{SoleWriter: c.sole}, nil)
		var scanners []*bufio.Scanner
		for range 20 {
			resp, sc := sse(t, e.url, authtest.NobodyToken)
			if resp.StatusCode != 200 {
				t.Fatalf("stream: %d", resp.StatusCode)
			}
			scanners = append(scanners, sc)
		}
		time.Sleep(300 * time.Millisecond) // every stream is waiting now
		before := e.table.Counts()
		time.Sleep(2 * time.Second)
		after := e.table.Counts()
		calls := (after.Get + after.Query + after.Write) - (before.Get + before.Query + before.Write)
		if calls > c.maxCalls {
			t.Fatalf("sole writer %v: 20 idle streams made %d metadata calls in 2 s, want at most %d", c.sole, calls, c.maxCalls)
		}
		t.Logf("sole writer %v: %d metadata calls in 2 s for 20 idle streams", c.sole, calls)
		req, _ := http.NewRequest("POST", e.url+"/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"wake up"}]}`))
		req.Header.Set("Authorization", "Bearer "+authtest.NobodyToken)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("produce: %v %v", resp, err)
		}
		for i, sc := range scanners {
			if !untilEvent(sc, "wake up") {
				t.Fatalf("stream %d never saw the record", i)
			}
		}
	}
}
