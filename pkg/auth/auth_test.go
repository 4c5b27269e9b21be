package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/authtest"
	"github.com/streambed/streambed/pkg/auth"
)

func TestParsePolicyRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":    `{"principals":{},"tokenz":[]}`,
		"unknown op":       `{"principals":{"a":{"grants":[{"ops":["write"],"topics":["x"]}]}}}`,
		"no resources":     `{"principals":{"a":{"grants":[{"ops":["produce"]}]}}}`,
		"inner wildcard":   `{"principals":{"a":{"grants":[{"ops":["produce"],"topics":["a*b"]}]}}}`,
		"token principal":  `{"principals":{},"tokens":[{"principal":"ghost","sha256":"` + strings.Repeat("ab", 32) + `"}]}`,
		"token not hashed": `{"principals":{"a":{"grants":[{"ops":["produce"],"topics":["x"]}]}},"tokens":[{"principal":"a","sha256":"secret"}]}`,
		"jwt incomplete":   `{"principals":{},"jwt":{"issuer":"i","audience":"a"}}`,
		"not json":         `principals: {}`,
	} {
		if _, err := auth.ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAllowed(t *testing.T) {
	pol, _ := authtest.Policy(t)
	a, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who  string
		op   auth.Op
		kind auth.Kind
		name string
		want bool
	}{
		{"writer", auth.Produce, auth.Topic, "orders", true},
		{"writer", auth.Produce, auth.Topic, "orders2", false}, // exact name, not a prefix
		{"writer", auth.Consume, auth.Topic, "orders", false},
		{"writer", auth.Read, auth.Topic, "orders", true},
		{"writer", auth.Read, auth.Group, "billing", false},
		{"jwt:reader", auth.Consume, auth.Topic, "orders-eu", true}, // prefix ord*
		{"jwt:reader", auth.Consume, auth.Topic, "payments", false},
		{"jwt:reader", auth.Consume, auth.Group, "billing", true},
		{"jwt:reader", auth.Consume, auth.Group, "billing-2", false},
		{"jwt:reader", auth.Admin, auth.Group, "billing", false},
		{"admin", auth.Admin, auth.Cluster, "", true},
		{"jwt:reader", auth.Admin, auth.Cluster, "", false},
		{"ghost", auth.Read, auth.Topic, "orders", false},
	} {
		if got := a.Allowed(auth.Identity{Principal: c.who}, c.op, c.kind, c.name); got != c.want {
			t.Errorf("%s %s %s %q: %v, want %v", c.who, c.op, c.kind, c.name, got, c.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	pol, signer := authtest.Policy(t)
	now := time.Now()
	a, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	good := signer.JWT(t, "reader", authtest.Audience, now.Add(time.Hour))
	parts := strings.Split(good, ".")
	noneAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + "."
	other := authtest.NewSigner(t).JWT(t, "reader", authtest.Audience, now.Add(time.Hour)) // same kid, different key
	for _, c := range []struct {
		name, header, want string
		err                error
	}{
		{"token", "Bearer " + authtest.WriterToken, "writer", nil},
		{"token, lower-case scheme", "bearer " + authtest.AdminToken, "admin", nil},
		{"jwt", "Bearer " + good, "jwt:reader", nil},
		{"none", "", "", auth.ErrNoCredentials},
		{"basic scheme", "Basic d3JpdGVyOng=", "", auth.ErrBadCredentials},
		{"unknown token", "Bearer sbt_nope", "", auth.ErrBadCredentials},
		{"token prefix", "Bearer " + authtest.WriterToken[:len(authtest.WriterToken)-1], "", auth.ErrBadCredentials},
		{"expired", "Bearer " + signer.JWT(t, "reader", authtest.Audience, now.Add(-time.Minute)), "", auth.ErrBadCredentials},
		{"wrong audience", "Bearer " + signer.JWT(t, "reader", "other", now.Add(time.Hour)), "", auth.ErrBadCredentials},
		{"alg none", "Bearer " + noneAlg, "", auth.ErrBadCredentials},
		{"signed by another key", "Bearer " + other, "", auth.ErrBadCredentials},
		{"tampered payload", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"`+authtest.Issuer+`","aud":"streambed","exp":9999999999}`)) + "." + parts[2], "", auth.ErrBadCredentials},
	} {
		r := httptest.NewRequest("GET", "/v1/topics", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		id, err := a.Authenticate(r)
		if !errors.Is(err, c.err) || (c.err == nil && id.Principal != c.want) {
			t.Errorf("%s: %+v, %v", c.name, id, err)
		}
		if err != nil && c.header != "" && strings.Contains(err.Error(), strings.TrimPrefix(c.header, "Bearer ")) {
			t.Errorf("%s: the error repeats the credential", c.name)
		}
	}
	// The gateway's verified identity wins over headers.
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(auth.WithGateway(r.Context(), auth.GatewayIdentity{Claims: map[string]string{"sub": "reader"}}))
	if id, err := a.Authenticate(r); err != nil || id.Principal != "jwt:reader" || id.Via != "gateway-jwt" {
		t.Fatalf("gateway: %+v %v", id, err)
	}
}

// BenchmarkVerifyToken: a token that matches and one that differs in its
// first byte take the same time (hash, then constant-time compare against
// every entry).
func BenchmarkVerifyToken(b *testing.B) {
	pol, _ := authtest.Policy(b)
	a, _ := auth.New(context.Background(), pol)
	for _, tok := range []string{authtest.WriterToken, "X" + authtest.WriterToken[1:]} {
		b.Run(tok[:4], func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			for b.Loop() {
				_, _ = a.Authenticate(r)
			}
		})
	}
}

// TestJWKSFromURL fetches the key set over HTTP, as from an issuer's
// /.well-known/jwks.json.
func TestJWKSFromURL(t *testing.T) {
	signer := authtest.NewSigner(t)
	jwks, err := os.ReadFile(signer.JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer srv.Close()
	pol, err := auth.ParsePolicy([]byte(`{"principals":{"jwt:reader":{"grants":[{"ops":["consume"],"topics":["orders"]}]}},
		"jwt":{"issuer":"` + authtest.Issuer + `","audience":"` + authtest.Audience + `","jwks_url":"` + srv.URL + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+signer.JWT(t, "reader", authtest.Audience, time.Now().Add(time.Hour)))
	if id, err := a.Authenticate(r); err != nil || id.Principal != "jwt:reader" {
		t.Fatalf("%+v %v", id, err)
	}
	srv.Close()
	if _, err := auth.New(context.Background(), pol); err == nil {
		t.Fatal("an unreachable JWKS URL was accepted at start")
	}
}

// jwksServer serves a key set that the test can change, counting fetches.
type jwksServer struct {
	mu      sync.Mutex
	set     []byte
	fetches atomic.Int64
	srv     *httptest.Server
}

func newJWKSServer(t *testing.T, set []byte) *jwksServer {
	j := &jwksServer{set: set}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		time.Sleep(20 * time.Millisecond) // a slow issuer: concurrent verifications pile up on one fetch
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(j.set)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) serve(set []byte) {
	j.mu.Lock()
	j.set = set
	j.mu.Unlock()
}

// TestJWKSRefresh: a key the issuer revoked stops being trusted after the
// refresh interval; a key the issuer added is fetched on first use, by
// one fetch however many requests need it at once, and no more often than
// every 30 seconds for keys that never appear.
func TestJWKSRefresh(t *testing.T) {
	old, added := authtest.NewSignerKID(t, "old"), authtest.NewSignerKID(t, "new")
	j := newJWKSServer(t, authtest.JWKS(old))
	pol, err := auth.ParsePolicy([]byte(`{"principals":{"jwt:reader":{"grants":[{"ops":["consume"],"topics":["orders"]}]}},
		"jwt":{"issuer":"` + authtest.Issuer + `","audience":"` + authtest.Audience + `","jwks_url":"` + j.srv.URL + `","refresh_seconds":60}}`))
	if err != nil {
		t.Fatal(err)
	}
	var clockMu sync.Mutex
	now := time.Now()
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	a, err := auth.New(context.Background(), pol, auth.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	verify := func(s *authtest.Signer) error {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+s.JWT(t, "reader", authtest.Audience, clock().Add(time.Hour)))
		_, err := a.Authenticate(r)
		return err
	}
	if err := verify(old); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates (a while after the start-up fetch): "new" is
	// added and "old" revoked.
	advance(31 * time.Second)
	j.serve(authtest.JWKS(added))
	start := j.fetches.Load()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = verify(added) }()
	}
	wg.Wait()
	advance(time.Millisecond) // let the refresh's start time pass
	for i, err := range errs {
		if err != nil {
			t.Fatalf("verification %d with the added key: %v", i, err)
		}
	}
	if n := j.fetches.Load() - start; n != 1 {
		t.Fatalf("%d fetches for 20 concurrent tokens with a new key, want 1", n)
	}
	// That fetch already dropped the revoked key.
	if err := verify(old); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("a revoked key is still trusted: %v", err)
	}
	// Unknown keys do not make every request fetch.
	stranger := authtest.NewSignerKID(t, "stranger")
	before := j.fetches.Load()
	for range 10 {
		_ = verify(stranger)
	}
	if n := j.fetches.Load() - before; n > 1 {
		t.Fatalf("%d fetches for 10 tokens of an unknown key within 30 s", n)
	}
	// A revocation the issuer makes is noticed within the refresh interval
	// even if no unknown key comes along.
	j.serve(authtest.JWKS(old))
	if err := verify(old); err == nil {
		t.Fatal("the refresh ran early")
	}
	advance(61 * time.Second)
	j.serve(authtest.JWKS(added)) // "old" back then gone again: only the schedule can see it
	if err := verify(added); err != nil {
		t.Fatal(err)
	}
	j.serve(authtest.JWKS(old))
	advance(61 * time.Second)
	if err := verify(added); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("a key revoked %s ago is still trusted: %v", 61*time.Second, err)
	}
}

// TestJWTPrincipalNamespace: a JWT's subject names principal "jwt:<sub>",
// never a static-token principal, unless the policy maps it.
func TestJWTPrincipalNamespace(t *testing.T) {
	signer := authtest.NewSigner(t)
	pol, err := auth.ParsePolicy([]byte(`{"principals":{"ops":{"grants":[{"ops":["admin"],"topics":["*"]}]}},
		"jwt":{"issuer":"` + authtest.Issuer + `","audience":"` + authtest.Audience + `","jwks_file":"` + signer.JWKSFile + `","principal_map":{"0a1b2c":"ops"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]string{"ops": "jwt:ops", "0a1b2c": "ops", "alice": "jwt:alice"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+signer.JWT(t, sub, authtest.Audience, time.Now().Add(time.Hour)))
		id, err := a.Authenticate(r)
		if err != nil || id.Principal != want || id.Expires.IsZero() {
			t.Errorf("sub %q: %+v %v, want principal %q with an expiry", sub, id, err, want)
		}
	}
	if _, err := auth.ParsePolicy([]byte(`{"principals":{},"jwt":{"issuer":"i","audience":"a","jwks_file":"f","principal_map":{"x":"nobody"}}}`)); err == nil {
		t.Fatal("a principal_map naming an unknown principal was accepted")
	}
}
