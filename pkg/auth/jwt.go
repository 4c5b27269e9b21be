package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// algorithms are the JWS algorithms accepted (never "none", never HMAC:
// the JWKS holds public keys).
var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// keySet is a JWKS from a file (read once) or a URL, fetched at start,
// again every refresh interval (so a key the issuer revoked stops being
// trusted), and early when a token names a key it lacks (how issuers
// rotate keys) — at most once per minInterval, and one fetch at a time:
// requests that need a fetch already under way wait for it.
type keySet struct {
	file, url   string
	hc          *http.Client
	now         func() time.Time
	minInterval time.Duration

	mu        sync.Mutex
	set       jose.JSONWebKeySet
	fetched   time.Time // last successful load
	attempted time.Time // last load started
	refresh   time.Duration
	inflight  chan struct{} // closed when the fetch under way ends
	fetches   int           // loads started (tests)
}

// DefaultJWKSRefresh is how often a JWKS URL is fetched again.
const DefaultJWKSRefresh = 10 * time.Minute

func newKeySet(j *JWTConfig, hc *http.Client, now func() time.Time) *keySet {
	return &keySet{file: j.JWKSFile, url: j.JWKSURL, hc: hc, now: now, minInterval: 30 * time.Second, refresh: DefaultJWKSRefresh}
}

func (k *keySet) setRefresh(seconds int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refresh = DefaultJWKSRefresh
	if seconds > 0 {
		k.refresh = time.Duration(seconds) * time.Second
		k.minInterval = min(k.minInterval, k.refresh)
	}
}

func (k *keySet) load(ctx context.Context) error {
	k.mu.Lock()
	k.attempted = k.now()
	k.fetches++
	k.mu.Unlock()
	var data []byte
	var err error
	if k.file != "" {
		data, err = os.ReadFile(k.file)
	} else {
		data, err = k.fetch(ctx)
	}
	if err != nil {
		return fmt.Errorf("auth: JWKS: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("auth: JWKS: %w", err)
	}
	k.mu.Lock()
	k.set, k.fetched = set, k.now()
	k.mu.Unlock()
	return nil
}

func (k *keySet) fetch(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// reload fetches the set again unless a fetch is under way, in which case
// it waits for that one.
func (k *keySet) reload(ctx context.Context) {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	k.inflight = ch
	k.mu.Unlock()
	_ = k.load(context.WithoutCancel(ctx)) // a failed fetch keeps the current keys
	k.mu.Lock()
	k.inflight = nil
	k.mu.Unlock()
	close(ch)
}

func (k *keySet) key(ctx context.Context, kid string) *jose.JSONWebKey {
	k.mu.Lock()
	keys := k.set.Key(kid)
	now := k.now()
	due := k.url != "" && now.Sub(k.fetched) >= k.refresh && now.Sub(k.attempted) >= k.minInterval
	unknown := len(keys) == 0 && k.url != "" && (now.Sub(k.attempted) >= k.minInterval || k.inflight != nil)
	k.mu.Unlock()
	if due || unknown {
		k.reload(ctx)
		k.mu.Lock()
		keys = k.set.Key(kid)
		k.mu.Unlock()
	}
	if len(keys) == 0 {
		return nil
	}
	return &keys[0]
}

// verifyJWT checks signature, issuer, audience, expiry (required) and
// not-before, and names the principal by the configured claim.
func (a *Authorizer) verifyJWT(ctx context.Context, st *authState, raw string) (Identity, error) {
	cfg := st.policy.JWT
	tok, err := jwt.ParseSigned(raw, algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return Identity{}, fmt.Errorf("%w: malformed JWT", ErrBadCredentials)
	}
	key := st.jwks.key(ctx, tok.Headers[0].KeyID)
	if key == nil {
		return Identity{}, fmt.Errorf("%w: JWT signed by an unknown key", ErrBadCredentials)
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key.Public().Key, &std, &all); err != nil {
		return Identity{}, fmt.Errorf("%w: JWT signature does not verify", ErrBadCredentials)
	}
	if std.Expiry == nil {
		return Identity{}, fmt.Errorf("%w: JWT has no expiry", ErrBadCredentials)
	}
	leeway := time.Duration(cfg.LeewaySeconds) * time.Second
	if cfg.LeewaySeconds == 0 {
		leeway = 30 * time.Second
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: cfg.Issuer, AnyAudience: jwt.Audience{cfg.Audience}, Time: a.now()}, leeway); err != nil {
		return Identity{}, fmt.Errorf("%w: JWT %v", ErrBadCredentials, err)
	}
	claim := cfg.PrincipalClaim
	if claim == "" {
		claim = "sub"
	}
	p, _ := all[claim].(string)
	if p == "" {
		return Identity{}, fmt.Errorf("%w: JWT has no %q claim", ErrBadCredentials, claim)
	}
	return Identity{Principal: jwtPrincipal(cfg, p), Via: "jwt", Expires: std.Expiry.Time()}, nil
}
