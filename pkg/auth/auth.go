// Package auth decides who is calling and what they may do: principals
// authenticated by static bearer tokens (stored hashed), JWTs checked
// against a JWKS, or — on Lambda — the identity API Gateway already
// verified; and a small policy document granting operations on topics and
// groups by name or prefix, Kafka ACLs in spirit.
//
// The HTTP API asks two questions: Authenticate (who: 401 when nobody)
// and Allowed (may they: 403 when not). Both are answered the same way
// whether or not the topic or group exists, so errors reveal nothing.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// Op is an operation a grant allows.
type Op string

// Operations. Consume covers reading records and a group's membership and
// commits; Admin covers creating, changing and deleting topics and groups
// and resetting offsets. Reading metadata (describing a topic, a group's
// lag) needs any operation on that topic or group.
const (
	Produce Op = "produce"
	Consume Op = "consume"
	Admin   Op = "admin"
	// Read is what metadata routes need: any of the three.
	Read Op = "read"
)

// Kind is what a resource is.
type Kind string

// Resource kinds. Cluster is the deployment itself (the admin routes
// that compact or check all of it): granted by admin on topics "*".
const (
	Topic   Kind = "topic"
	Group   Kind = "group"
	Cluster Kind = "cluster"
)

// Grant allows ops on the topics and groups whose names match a pattern:
// an exact name, a prefix ending in "*" ("orders.*"), or "*" for all.
type Grant struct {
	Ops    []Op     `json:"ops"`
	Topics []string `json:"topics,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Principal is a named caller's grants.
type Principal struct {
	Grants []Grant `json:"grants"`
}

// Token maps a static bearer token, by its SHA-256 (hex), to a principal.
type Token struct {
	Principal string `json:"principal"`
	SHA256    string `json:"sha256"`
}

// JWTConfig validates bearer JWTs: signature by a key of the JWKS (a file
// or a URL), issuer, audience and expiry; the principal is a claim.
type JWTConfig struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	JWKSFile string `json:"jwks_file,omitempty"`
	JWKSURL  string `json:"jwks_url,omitempty"`
	// PrincipalClaim names the principal (default "sub").
	PrincipalClaim string `json:"principal_claim,omitempty"`
	// LeewaySeconds allows for clock skew on exp/nbf (default 30).
	LeewaySeconds int `json:"leeway_seconds,omitempty"`
}

// Policy is the policy document.
type Policy struct {
	Principals map[string]Principal `json:"principals"`
	Tokens     []Token              `json:"tokens,omitempty"`
	JWT        *JWTConfig           `json:"jwt,omitempty"`
}

// ParsePolicy reads a policy document and checks it.
func ParsePolicy(data []byte) (*Policy, error) {
	var p Policy
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("auth policy: %w", err)
	}
	for name, pr := range p.Principals {
		for i, g := range pr.Grants {
			if len(g.Ops) == 0 || (len(g.Topics) == 0 && len(g.Groups) == 0) {
				return nil, fmt.Errorf("auth policy: principal %q grant %d needs ops and topics or groups", name, i)
			}
			for _, op := range g.Ops {
				if op != Produce && op != Consume && op != Admin {
					return nil, fmt.Errorf("auth policy: principal %q grant %d: unknown op %q (produce, consume, admin)", name, i, op)
				}
			}
			for _, pat := range append(slices.Clone(g.Topics), g.Groups...) {
				if pat == "" || strings.Contains(strings.TrimSuffix(pat, "*"), "*") {
					return nil, fmt.Errorf("auth policy: principal %q grant %d: pattern %q: use a name, a prefix ending in *, or *", name, i, pat)
				}
			}
		}
	}
	for i, t := range p.Tokens {
		if _, ok := p.Principals[t.Principal]; !ok {
			return nil, fmt.Errorf("auth policy: token %d names unknown principal %q", i, t.Principal)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("auth policy: token %d: sha256 must be 64 hex digits (streambed token prints one)", i)
		}
	}
	if j := p.JWT; j != nil {
		if j.Issuer == "" || j.Audience == "" || (j.JWKSFile == "") == (j.JWKSURL == "") {
			return nil, errors.New("auth policy: jwt needs issuer, audience and exactly one of jwks_file, jwks_url")
		}
	}
	return &p, nil
}

// LoadPolicy reads a policy file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePolicy(data)
}

// HashToken is what a policy stores for a token.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// Errors of Authenticate. Their messages never include the credential.
var (
	ErrNoCredentials  = errors.New("no credentials: send Authorization: Bearer <token>")
	ErrBadCredentials = errors.New("invalid credentials")
)

// Identity is an authenticated caller.
type Identity struct {
	Principal string
	// Via says how: "token", "jwt", "gateway-jwt", "gateway-iam".
	Via string
}

// GatewayIdentity is what API Gateway (or a function URL with IAM auth)
// verified before invoking the function. Only the Lambda adapter sets it.
type GatewayIdentity struct {
	Claims  map[string]string // JWT authorizer claims
	IAMARN  string            // IAM caller ARN
	present bool
}

type gatewayKey struct{}

// WithGateway records the identity API Gateway verified for a request.
func WithGateway(ctx context.Context, g GatewayIdentity) context.Context {
	g.present = true
	return context.WithValue(ctx, gatewayKey{}, g)
}

// Authorizer authenticates requests and applies the policy. Safe for
// concurrent use.
type Authorizer struct {
	policy *Policy
	hashes [][sha256.Size]byte
	jwks   *keySet
	now    func() time.Time
}

// Option configures an Authorizer.
type Option func(*Authorizer)

// WithClock sets the clock JWT expiry is checked against (tests).
func WithClock(now func() time.Time) Option { return func(a *Authorizer) { a.now = now } }

// WithHTTPClient sets the client that fetches a JWKS URL.
func WithHTTPClient(hc *http.Client) Option {
	return func(a *Authorizer) {
		if a.jwks != nil {
			a.jwks.hc = hc
		}
	}
}

// New returns an Authorizer for p, loading its JWKS.
func New(ctx context.Context, p *Policy, opts ...Option) (*Authorizer, error) {
	a := &Authorizer{policy: p, now: time.Now}
	for _, t := range p.Tokens {
		var h [sha256.Size]byte
		b, _ := hex.DecodeString(t.SHA256)
		copy(h[:], b)
		a.hashes = append(a.hashes, h)
	}
	if p.JWT != nil {
		a.jwks = &keySet{file: p.JWT.JWKSFile, url: p.JWT.JWKSURL, hc: http.DefaultClient}
	}
	for _, o := range opts {
		o(a)
	}
	if a.jwks != nil {
		if err := a.jwks.load(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Authenticate names the caller of r.
func (a *Authorizer) Authenticate(r *http.Request) (Identity, error) {
	if g, ok := r.Context().Value(gatewayKey{}).(GatewayIdentity); ok && g.present {
		return a.fromGateway(g)
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return Identity{}, ErrNoCredentials
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return Identity{}, fmt.Errorf("%w: use the Bearer scheme", ErrBadCredentials)
	}
	if strings.Count(cred, ".") == 2 && a.jwks != nil {
		return a.verifyJWT(r.Context(), cred)
	}
	return a.verifyToken(cred)
}

// verifyToken compares the token's SHA-256 with every stored hash in
// constant time, and always with all of them: neither how much of a
// token matches nor which entry matches shows in the time taken.
func (a *Authorizer) verifyToken(token string) (Identity, error) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.hashes {
		if subtle.ConstantTimeCompare(sum[:], a.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, ErrBadCredentials
	}
	return Identity{Principal: a.policy.Tokens[found].Principal, Via: "token"}, nil
}

func (a *Authorizer) fromGateway(g GatewayIdentity) (Identity, error) {
	if g.IAMARN != "" {
		return Identity{Principal: g.IAMARN, Via: "gateway-iam"}, nil
	}
	claim := "sub"
	if a.policy.JWT != nil && a.policy.JWT.PrincipalClaim != "" {
		claim = a.policy.JWT.PrincipalClaim
	}
	if p := g.Claims[claim]; p != "" {
		return Identity{Principal: p, Via: "gateway-jwt"}, nil
	}
	return Identity{}, fmt.Errorf("%w: the gateway's authorizer named no principal (claim %q)", ErrBadCredentials, claim)
}

// Allowed reports whether id may do op on the resource. Read is allowed
// by any operation on the resource; for Cluster, admin on topic "*".
func (a *Authorizer) Allowed(id Identity, op Op, kind Kind, name string) bool {
	pr, ok := a.policy.Principals[id.Principal]
	if !ok {
		return false
	}
	for _, g := range pr.Grants {
		opOK := slices.Contains(g.Ops, op) || (op == Read && len(g.Ops) > 0)
		if !opOK {
			continue
		}
		switch kind {
		case Topic:
			if matchAny(g.Topics, name) {
				return true
			}
		case Group:
			if matchAny(g.Groups, name) {
				return true
			}
		case Cluster:
			if slices.Contains(g.Ops, Admin) && slices.Contains(g.Topics, "*") {
				return true
			}
		}
	}
	return false
}

// AllowedAny reports whether id has op on at least one resource of kind
// (e.g. may produce somewhere: may get a producer id).
func (a *Authorizer) AllowedAny(id Identity, op Op, kind Kind) bool {
	pr, ok := a.policy.Principals[id.Principal]
	if !ok {
		return false
	}
	for _, g := range pr.Grants {
		if (slices.Contains(g.Ops, op) || op == Read) && ((kind == Topic && len(g.Topics) > 0) || (kind == Group && len(g.Groups) > 0)) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == "*" || p == name || (strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}
