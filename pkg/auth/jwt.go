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

// keySet is a JWKS from a file (read once) or a URL (fetched at start and
// again, at most once a minute, when a token names a key it lacks — how
// issuers rotate keys).
type keySet struct {
	file, url string
	hc        *http.Client
	mu        sync.Mutex
	set       jose.JSONWebKeySet
	fetched   time.Time
}

func (k *keySet) load(ctx context.Context) error {
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
	k.set, k.fetched = set, time.Now()
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

func (k *keySet) key(ctx context.Context, kid string) *jose.JSONWebKey {
	k.mu.Lock()
	keys := k.set.Key(kid)
	stale := k.url != "" && time.Since(k.fetched) > time.Minute
	k.mu.Unlock()
	if len(keys) == 0 && stale {
		if err := k.load(ctx); err == nil {
			k.mu.Lock()
			keys = k.set.Key(kid)
			k.mu.Unlock()
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return &keys[0]
}

// verifyJWT checks signature, issuer, audience, expiry (required) and
// not-before, and names the principal by the configured claim.
func (a *Authorizer) verifyJWT(ctx context.Context, raw string) (Identity, error) {
	cfg := a.policy.JWT
	tok, err := jwt.ParseSigned(raw, algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return Identity{}, fmt.Errorf("%w: malformed JWT", ErrBadCredentials)
	}
	key := a.jwks.key(ctx, tok.Headers[0].KeyID)
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
	return Identity{Principal: p, Via: "jwt"}, nil
}
