package kafkaapi

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
)

// SASL mechanisms: PLAIN, whose password is a Streambed token (the user
// name is informative), and OAUTHBEARER, whose token is a JWT the policy
// trusts. Both go over TLS in production: PLAIN sends the token in the
// clear otherwise.
const (
	mechPlain       = "PLAIN"
	mechOAuthBearer = "OAUTHBEARER"
)

// may reports whether the connection's principal may do op on a resource
// (always, without authorization).
func (c *conn) may(op auth.Op, kind auth.Kind, name string) bool {
	if c.s.cfg.Auth == nil {
		return true
	}
	return c.s.cfg.Auth.Allowed(c.id, op, kind, name)
}

func handleSASLHandshake(_ context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := kmsg.NewPtrSASLHandshakeResponse()
	if c.s.cfg.Auth == nil {
		// A listener without --auth speaks no SASL (as a PLAINTEXT
		// listener of Kafka's): say so rather than pretend.
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, nil
	}
	resp.SupportedMechanisms = []string{mechPlain, mechOAuthBearer}
	switch req.Mechanism {
	case mechPlain, mechOAuthBearer:
		c.mechanism = req.Mechanism
		c.v0SASL = req.Version == 0
	default:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	return resp, nil
}

func handleSASLAuthenticate(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	if c.mechanism == "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strp("SaslAuthenticate before SaslHandshake")
		return resp, nil
	}
	lifetime, err := c.authenticate(ctx, req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = strp(err.Error())
		c.s.log.Info("Kafka SASL authentication failed", "client", c.nc.RemoteAddr(), "mechanism", c.mechanism, "err", err)
		return resp, nil
	}
	resp.SessionLifetimeMillis = lifetime.Milliseconds()
	return resp, nil
}

// authenticateV0 handles the raw token frame that follows a SaslHandshake
// v0, answered by a raw (empty) frame.
func (c *conn) authenticateV0(ctx context.Context, token []byte) error {
	c.v0SASL = false
	if _, err := c.authenticate(ctx, token); err != nil {
		c.s.log.Info("Kafka SASL authentication failed", "client", c.nc.RemoteAddr(), "mechanism", c.mechanism, "err", err)
		return err
	}
	_, err := c.nc.Write([]byte{0, 0, 0, 0})
	return err
}

// authenticate checks a SASL response and records the identity; it
// returns how long the session may last (0: no limit).
func (c *conn) authenticate(ctx context.Context, msg []byte) (time.Duration, error) {
	var secret string
	switch c.mechanism {
	case mechPlain:
		parts := bytes.Split(msg, []byte{0})
		if len(parts) != 3 {
			return 0, fmt.Errorf("malformed PLAIN response")
		}
		if len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
			return 0, fmt.Errorf("PLAIN authorization identities are not supported")
		}
		secret = string(parts[2])
	case mechOAuthBearer:
		// RFC 7628: gs2 header, then key=value pairs separated by 0x01.
		for _, kv := range strings.Split(string(msg), "\x01") {
			if v, ok := strings.CutPrefix(kv, "auth="); ok {
				scheme, tok, _ := strings.Cut(v, " ")
				if strings.EqualFold(scheme, "Bearer") {
					secret = tok
				}
			}
		}
		if secret == "" {
			return 0, fmt.Errorf("malformed OAUTHBEARER response: no auth=Bearer token")
		}
	}
	id, err := c.s.cfg.Auth.AuthenticateSecret(ctx, secret)
	if err != nil {
		return 0, err
	}
	c.id, c.authenticated = id, true
	if id.Expires.IsZero() {
		return 0, nil
	}
	return max(time.Until(id.Expires), time.Millisecond), nil
}
