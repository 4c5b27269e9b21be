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
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
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

// Principal is a named caller's grants and limits.
type Principal struct {
	Grants []Grant `json:"grants"`
	// Limits override the policy's default limits for this principal.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits bound what one principal may use of a server. Zero fields take
// the policy default; a negative one means no limit.
type Limits struct {
	// RequestsPerSecond and Burst rate-limit requests (a token bucket per
	// principal and server process; default: no limit).
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	Burst             int     `json:"burst,omitempty"`
	// Streams bounds the principal's open SSE streams (default 100).
	Streams int `json:"streams,omitempty"`
}

// DefaultStreams is the per-principal SSE stream cap without a policy
// setting.
const DefaultStreams = 100

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
	// PrincipalClaim names the claim that identifies the caller (default
	// "sub"). The principal is "jwt:" followed by its value, so a JWT can
	// never claim the grants of a static-token principal by choosing its
	// subject ("sub": "ops" is principal "jwt:ops", not "ops").
	PrincipalClaim string `json:"principal_claim,omitempty"`
	// PrincipalMap names principals for claim values instead ("the JWT
	// whose sub is 0a1b... is ops").
	PrincipalMap map[string]string `json:"principal_map,omitempty"`
	// RefreshSeconds is how often a JWKS URL is fetched again, so a key
	// the issuer revoked stops being trusted (default 600). A token
	// naming an unknown key fetches it sooner (at most every 30 s).
	RefreshSeconds int `json:"refresh_seconds,omitempty"`
	// LeewaySeconds allows for clock skew on exp/nbf (default 30).
	LeewaySeconds int `json:"leeway_seconds,omitempty"`
}

// Policy is the policy document.
type Policy struct {
	Principals map[string]Principal `json:"principals"`
	Tokens     []Token              `json:"tokens,omitempty"`
	JWT        *JWTConfig           `json:"jwt,omitempty"`
	// DefaultLimits apply to every principal without limits of its own.
	DefaultLimits *Limits `json:"default_limits,omitempty"`
}

// JWTPrincipalPrefix starts every principal a JWT names (unless mapped).
const JWTPrincipalPrefix = "jwt:"

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
		for claim, name := range j.PrincipalMap {
			if _, ok := p.Principals[name]; !ok || claim == "" {
				return nil, fmt.Errorf("auth policy: jwt principal_map maps %q to unknown principal %q", claim, name)
			}
		}
		if j.RefreshSeconds < 0 {
			return nil, errors.New("auth policy: jwt refresh_seconds must not be negative")
		}
	}
	for name, pr := range p.Principals {
		if l := pr.Limits; l != nil && (l.Burst < 0 || math.IsNaN(l.RequestsPerSecond)) {
			return nil, fmt.Errorf("auth policy: principal %q: limits must not be negative", name)
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
	// Expires is when the credential stops being valid (zero: it does not
	// expire by itself). Long-lived requests (streams) end then.
	Expires time.Time
	// tokenHash is the static token's entry, so a removed token can be
	// noticed on a long-lived request.
	tokenHash string
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
// concurrent use; the policy can be replaced while it serves (Reload).
type Authorizer struct {
	state atomic.Pointer[authState]
	now   func() time.Time
	hc    *http.Client

	limitersMu sync.Mutex
	limiters   map[string]*rate.Limiter
}

// authState is one version of the policy, with the token hashes it holds.
type authState struct {
	policy *Policy
	hashes [][sha256.Size]byte
	jwks   *keySet
}

func newState(p *Policy, jwks *keySet) *authState {
	st := &authState{policy: p, jwks: jwks}
	for _, t := range p.Tokens {
		var h [sha256.Size]byte
		b, _ := hex.DecodeString(t.SHA256)
		copy(h[:], b)
		st.hashes = append(st.hashes, h)
	}
	return st
}

func (a *Authorizer) policy() *Policy { return a.state.Load().policy }

// Option configures an Authorizer.
type Option func(*Authorizer)

// WithClock sets the clock JWT expiry is checked against (tests).
func WithClock(now func() time.Time) Option { return func(a *Authorizer) { a.now = now } }

// WithHTTPClient sets the client that fetches a JWKS URL.
func WithHTTPClient(hc *http.Client) Option { return func(a *Authorizer) { a.hc = hc } }

// New returns an Authorizer for p, loading its JWKS.
func New(ctx context.Context, p *Policy, opts ...Option) (*Authorizer, error) {
	a := &Authorizer{now: time.Now, hc: http.DefaultClient, limiters: map[string]*rate.Limiter{}}
	for _, o := range opts {
		o(a)
	}
	if err := a.Reload(ctx, p); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload replaces the policy (a JWKS it names is loaded first; on any
// error the current policy stays). Requests and streams check every
// decision against the policy current at the time.
func (a *Authorizer) Reload(ctx context.Context, p *Policy) error {
	var ks *keySet
	if j := p.JWT; j != nil {
		var cur *keySet
		if st := a.state.Load(); st != nil {
			cur = st.jwks
		}
		if cur != nil && cur.file == j.JWKSFile && cur.url == j.JWKSURL {
			ks = cur
		} else {
			ks = newKeySet(j, a.hc, a.now)
			if err := ks.load(ctx); err != nil {
				return err
			}
		}
		ks.setRefresh(j.RefreshSeconds)
	}
	a.state.Store(newState(p, ks))
	a.limitersMu.Lock()
	clear(a.limiters) // new limits take effect at once
	a.limitersMu.Unlock()
	return nil
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
	return a.AuthenticateSecret(r.Context(), cred)
}

// AuthenticateSecret names the caller presenting a bearer credential: a
// static token, or a JWT the policy trusts. It is how callers outside
// HTTP authenticate (a Kafka client's SASL PLAIN password or OAUTHBEARER
// token).
func (a *Authorizer) AuthenticateSecret(ctx context.Context, cred string) (Identity, error) {
	if cred == "" {
		return Identity{}, ErrNoCredentials
	}
	if st := a.state.Load(); strings.Count(cred, ".") == 2 && st.jwks != nil {
		return a.verifyJWT(ctx, st, cred)
	}
	return a.verifyToken(cred)
}

// Valid reports whether an identity may still act: its credential has not
// expired, and (for a static token) the token is still in the policy.
func (a *Authorizer) Valid(id Identity) bool {
	if !id.Expires.IsZero() && !a.now().Before(id.Expires) {
		return false
	}
	if id.Via == "token" {
		_, ok := a.policy().Principals[id.Principal]
		return ok && a.tokenStillListed(id)
	}
	return true
}

func (a *Authorizer) tokenStillListed(id Identity) bool {
	for _, t := range a.policy().Tokens {
		if t.SHA256 == id.tokenHash {
			return true
		}
	}
	return false
}

// verifyToken compares the token's SHA-256 with every stored hash in
// constant time, and always with all of them: neither how much of a
// token matches nor which entry matches shows in the time taken.
func (a *Authorizer) verifyToken(token string) (Identity, error) {
	st := a.state.Load()
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range st.hashes {
		if subtle.ConstantTimeCompare(sum[:], st.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, ErrBadCredentials
	}
	t := st.policy.Tokens[found]
	return Identity{Principal: t.Principal, Via: "token", tokenHash: t.SHA256}, nil
}

func (a *Authorizer) fromGateway(g GatewayIdentity) (Identity, error) {
	if g.IAMARN != "" {
		return Identity{Principal: g.IAMARN, Via: "gateway-iam"}, nil
	}
	j := a.policy().JWT
	claim := "sub"
	if j != nil && j.PrincipalClaim != "" {
		claim = j.PrincipalClaim
	}
	if p := g.Claims[claim]; p != "" {
		id := Identity{Principal: jwtPrincipal(j, p), Via: "gateway-jwt"}
		if exp, err := strconv.ParseInt(g.Claims["exp"], 10, 64); err == nil {
			id.Expires = time.Unix(exp, 0)
		}
		return id, nil
	}
	return Identity{}, fmt.Errorf("%w: the gateway's authorizer named no principal (claim %q)", ErrBadCredentials, claim)
}

// Allowed reports whether id may do op on the resource. Read is allowed
// by any operation on the resource; for Cluster, admin on topic "*".
func (a *Authorizer) Allowed(id Identity, op Op, kind Kind, name string) bool {
	pr, ok := a.policy().Principals[id.Principal]
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
	pr, ok := a.policy().Principals[id.Principal]
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

// jwtPrincipal names the principal of a JWT whose identifying claim is v.
func jwtPrincipal(j *JWTConfig, v string) string {
	if j != nil {
		if name, ok := j.PrincipalMap[v]; ok {
			return name
		}
	}
	return JWTPrincipalPrefix + v
}

// LimitsOf returns the limits that apply to a principal.
func (a *Authorizer) LimitsOf(principal string) Limits {
	p := a.policy()
	var l Limits
	if d := p.DefaultLimits; d != nil {
		l = *d
	}
	if pr, ok := p.Principals[principal]; ok && pr.Limits != nil {
		if pr.Limits.RequestsPerSecond != 0 {
			l.RequestsPerSecond, l.Burst = pr.Limits.RequestsPerSecond, pr.Limits.Burst
		}
		if pr.Limits.Streams != 0 {
			l.Streams = pr.Limits.Streams
		}
	}
	if l.Streams == 0 {
		l.Streams = DefaultStreams
	}
	return l
}

// Throttle takes one request from the principal's rate limit. It returns
// 0 when the request may go ahead, else how long to wait before retrying.
func (a *Authorizer) Throttle(principal string) time.Duration {
	l := a.LimitsOf(principal)
	if l.RequestsPerSecond <= 0 {
		return 0
	}
	a.limitersMu.Lock()
	lim, ok := a.limiters[principal]
	if !ok {
		burst := l.Burst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(l.RequestsPerSecond)))
		}
		lim = rate.NewLimiter(rate.Limit(l.RequestsPerSecond), burst)
		a.limiters[principal] = lim
	}
	a.limitersMu.Unlock()
	res := lim.ReserveN(a.now(), 1)
	if !res.OK() {
		return time.Second
	}
	if d := res.DelayFrom(a.now()); d > 0 {
		res.CancelAt(a.now())
		return d
	}
	return 0
}
