package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
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
		{"reader", auth.Consume, auth.Topic, "orders-eu", true}, // prefix ord*
		{"reader", auth.Consume, auth.Topic, "payments", false},
		{"reader", auth.Consume, auth.Group, "billing", true},
		{"reader", auth.Consume, auth.Group, "billing-2", false},
		{"reader", auth.Admin, auth.Group, "billing", false},
		{"admin", auth.Admin, auth.Cluster, "", true},
		{"reader", auth.Admin, auth.Cluster, "", false},
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
		{"jwt", "Bearer " + good, "reader", nil},
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
	if id, err := a.Authenticate(r); err != nil || id.Principal != "reader" || id.Via != "gateway-jwt" {
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
	pol, err := auth.ParsePolicy([]byte(`{"principals":{"reader":{"grants":[{"ops":["consume"],"topics":["orders"]}]}},
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
	if id, err := a.Authenticate(r); err != nil || id.Principal != "reader" {
		t.Fatalf("%+v %v", id, err)
	}
	srv.Close()
	if _, err := auth.New(context.Background(), pol); err == nil {
		t.Fatal("an unreachable JWKS URL was accepted at start")
	}
}
