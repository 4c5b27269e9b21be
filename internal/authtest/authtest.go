// Package authtest holds what the authorization tests of the HTTP API and
// of the Lambda handlers share: a policy with a principal per role, JWTs
// signed by a throwaway key, seeded data, and one sample request for every
// route with the least-privileged principal that may make it.
package authtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
)

// Tokens of the static-token principals. Only their hashes are in the policy.
const (
	WriterToken = "sbt_writer-secret-token-0001"
	NobodyToken = "sbt_nobody-secret-token-0002"
	AdminToken  = "sbt_admin-secret-token-0003"
	Issuer      = "https://issuer.test"
	Audience    = "streambed"
)

// Policy grants: writer produces to orders; reader (a JWT with sub
// "reader", so principal "jwt:reader") consumes orders as group billing; admin does everything; nobody produces to "other" only.
func Policy(t testing.TB) (*auth.Policy, *Signer) {
	t.Helper()
	s := NewSigner(t)
	doc := map[string]any{
		"principals": map[string]any{
			"writer":                                map[string]any{"grants": []any{map[string]any{"ops": []string{"produce"}, "topics": []string{"orders"}}}},
			auth.JWTPrincipalPrefix + "reader":      map[string]any{"grants": []any{map[string]any{"ops": []string{"consume"}, "topics": []string{"ord*"}, "groups": []string{"billing"}}}},
			"admin":                                 map[string]any{"grants": []any{map[string]any{"ops": []string{"admin", "produce", "consume"}, "topics": []string{"*"}, "groups": []string{"*"}}}},
			"nobody":                                map[string]any{"grants": []any{map[string]any{"ops": []string{"produce"}, "topics": []string{"other"}}}},
			"arn:aws:iam::123456789012:role/ingest": map[string]any{"grants": []any{map[string]any{"ops": []string{"produce"}, "topics": []string{"orders"}}}},
		},
		"tokens": []any{
			map[string]string{"principal": "writer", "sha256": auth.HashToken(WriterToken)},
			map[string]string{"principal": "nobody", "sha256": auth.HashToken(NobodyToken)},
			map[string]string{"principal": "admin", "sha256": auth.HashToken(AdminToken)},
		},
		"jwt": map[string]any{"issuer": Issuer, "audience": Audience, "jwks_file": s.JWKSFile},
	}
	data, _ := json.Marshal(doc)
	p, err := auth.ParsePolicy(data)
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

// Signer mints JWTs with a throwaway RSA key published in a JWKS file.
type Signer struct {
	key      *rsa.PrivateKey
	kid      string
	JWKSFile string
}

// NewSigner makes a key (key id "k1") and writes its JWKS.
func NewSigner(t testing.TB) *Signer { return NewSignerKID(t, "k1") }

// NewSignerKID makes a key with the given key id and writes its JWKS.
func NewSignerKID(t testing.TB, kid string) *Signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{key: key, kid: kid}
	data := JWKS(s)
	s.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(s.JWKSFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// JWKS is the key set publishing the signers' public keys.
func JWKS(signers ...*Signer) []byte {
	var set jose.JSONWebKeySet
	for _, s := range signers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: string(jose.RS256), Use: "sig"})
	}
	data, _ := json.Marshal(set)
	return data
}

// JWT mints a token for sub with the given audience, valid until exp.
func (s *Signer) JWT(t testing.TB, sub, audience string, exp time.Time) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: Issuer, Subject: sub, Audience: jwt.Audience{audience},
		Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Seed creates topic orders (2 partitions, 3 records in partition 0) and
// group billing with a committed offset, as every route's sample expects.
func Seed(t testing.TB, b *broker.Broker) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.CreateTopic(ctx, "orders", 2, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	var recs []broker.ProduceRecord
	for range 3 {
		recs = append(recs, broker.ProduceRecord{Partition: 0})
		recs[len(recs)-1].Value = []byte("v")
	}
	if _, err := b.Produce(ctx, "orders", recs, broker.ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitOffsets(ctx, "billing", "", 0, []offsets.CommittedOffset{{Topic: "orders", Partition: 0, Offset: 1}}); err != nil {
		t.Fatal(err)
	}
}

// Sample is one request to a route and who may make it.
type Sample struct {
	Path    string // with parameters filled in and a query
	Body    string
	Granted string // the least-privileged principal allowed
}

// Samples has a request for every route, keyed "METHOD /pattern" as
// httpapi.Route names them. A route missing here fails the route-table
// tests: every new route must say who may call it.
var Samples = map[string]Sample{
	"GET /v1":                           {"/v1", "", ""},
	"GET /v1/openapi.json":              {"/v1/openapi.json", "", ""},
	"GET /{$}":                          {"/", "", ""},
	"GET /ui":                           {"/ui", "", ""},
	"GET /ui/{path...}":                 {"/ui/index.html", "", ""},
	"GET /v1/topics":                    {"/v1/topics", "", "nobody"},
	"POST /v1/topics":                   {"/v1/topics", `{"name":"new-topic","partitions":1}`, "admin"},
	"GET /v1/topics/{topic}":            {"/v1/topics/orders", "", "reader"},
	"PATCH /v1/topics/{topic}":          {"/v1/topics/orders", `{"partitions":3}`, "admin"},
	"DELETE /v1/topics/{topic}":         {"/v1/topics/orders", "", "admin"},
	"GET /v1/topics/{topic}/partitions": {"/v1/topics/orders/partitions", "", "reader"},
	"GET /v1/topics/{topic}/partitions/{partition}":          {"/v1/topics/orders/partitions/0", "", "reader"},
	"GET /v1/topics/{topic}/partitions/{partition}/offsets":  {"/v1/topics/orders/partitions/0/offsets?timestamp=0", "", "reader"},
	"POST /v1/topics/{topic}/partitions/{partition}/fence":   {"/v1/topics/orders/partitions/0/fence", `{"token":"t1"}`, "writer"},
	"POST /v1/topics/{topic}/records":                        {"/v1/topics/orders/records", `{"records":[{"value":"x"}]}`, "writer"},
	"POST /v1/topics/{topic}/partitions/{partition}/records": {"/v1/topics/orders/partitions/1/records", `{"records":[{"value":"x"}]}`, "writer"},
	"GET /v1/topics/{topic}/partitions/{partition}/records":  {"/v1/topics/orders/partitions/0/records?offset=0", "", "reader"},
	"POST /v1/fetch":                                                 {"/v1/fetch", `{"partitions":[{"topic":"orders","partition":0,"offset":0}]}`, "reader"},
	"POST /v1/producers":                                             {"/v1/producers", `{}`, "nobody"}, // any principal that may produce somewhere
	"GET /v1/groups":                                                 {"/v1/groups", "", "nobody"},
	"GET /v1/groups/{group}":                                         {"/v1/groups/billing", "", "reader"},
	"DELETE /v1/groups/{group}":                                      {"/v1/groups/billing", "", "admin"},
	"POST /v1/groups/{group}/heartbeat":                              {"/v1/groups/billing/heartbeat", `{"member_id":"m1","member_epoch":0,"topics":["orders"]}`, "reader"},
	"POST /v1/groups/{group}/poll":                                   {"/v1/groups/billing/poll", `{"member_id":"m1","member_epoch":0,"topics":["orders"],"wait_ms":0}`, "reader"},
	"GET /v1/groups/{group}/offsets":                                 {"/v1/groups/billing/offsets", "", "reader"},
	"POST /v1/groups/{group}/offsets":                                {"/v1/groups/billing/offsets", `{"offsets":[{"topic":"orders","partition":0,"offset":2}]}`, "reader"},
	"POST /v1/groups/{group}/offsets/reset":                          {"/v1/groups/billing/offsets/reset", `{"topic":"orders","to":"earliest"}`, "admin"},
	"GET /v1/groups/{group}/lag":                                     {"/v1/groups/billing/lag", "", "reader"},
	"POST /v1/admin/compact":                                         {"/v1/admin/compact", "", "admin"},
	"GET /v1/admin/fsck":                                             {"/v1/admin/fsck", "", "admin"},
	"GET /v3/clusters":                                               {"/v3/clusters", "", "nobody"},
	"POST /v3/clusters/{cluster}/topics/{topic}/records":             {"/v3/clusters/streambed/topics/orders/records", `{"value":{"type":"STRING","data":"x"}}`, "writer"},
	"POST /v3/clusters/{cluster}/topics/{topic}/records:batch":       {"/v3/clusters/streambed/topics/orders/records:batch", `{"entries":[{"id":"1","value":{"type":"STRING","data":"x"}}]}`, "writer"},
	"GET /kafka/v3/clusters":                                         {"/kafka/v3/clusters", "", "nobody"},
	"POST /kafka/v3/clusters/{cluster}/topics/{topic}/records":       {"/kafka/v3/clusters/streambed/topics/orders/records", `{"value":{"type":"STRING","data":"x"}}`, "writer"},
	"POST /kafka/v3/clusters/{cluster}/topics/{topic}/records:batch": {"/kafka/v3/clusters/streambed/topics/orders/records:batch", `{"entries":[{"id":"1","value":{"type":"STRING","data":"x"}}]}`, "writer"},
}
