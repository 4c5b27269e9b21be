// Package client is the Go SDK for Streambed's HTTP API: admin calls,
// reads, a batching idempotent Producer and a group Consumer. It imports no
// AWS and no server code (only the wire types of pkg/api); SigV4 signing
// plugs in through a Signer (see pkg/client/awsauth).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/retry"
)

// Signer authenticates a request before it is sent (bearer tokens, AWS
// SigV4). body is the request body, which signers that hash it need.
type Signer interface {
	Sign(req *http.Request, body []byte) error
}

// SignerFunc adapts a function to a Signer.
type SignerFunc func(req *http.Request, body []byte) error

// Sign calls f.
func (f SignerFunc) Sign(req *http.Request, body []byte) error { return f(req, body) }

// Client talks to one Streambed endpoint. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	hc         *http.Client
	signer     Signer
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	userAgent  string
}

type config struct {
	hc         *http.Client
	signer     Signer
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	userAgent  string
	timeout    time.Duration
}

// Option configures a Client; options are validated once, by New.
type Option func(*config) error

// WithHTTPClient sets the HTTP client (transport, proxies, TLS).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("client: nil HTTP client")
		}
		c.hc = hc
		return nil
	}
}

// WithBearerToken authenticates every request with a bearer token.
func WithBearerToken(token string) Option {
	return func(c *config) error {
		if token == "" || strings.ContainsAny(token, "\r\n") {
			return errors.New("client: empty or malformed bearer token")
		}
		c.signer = SignerFunc(func(req *http.Request, _ []byte) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		})
		return nil
	}
}

// WithSigner authenticates every request with s (e.g. AWS SigV4).
func WithSigner(s Signer) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("client: nil signer")
		}
		c.signer = s
		return nil
	}
}

// WithRetry sets how many attempts a call makes (first included) and the
// backoff between them (package retry's full jitter, bounds from base
// doubling up to max).
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(c *config) error {
		if attempts < 1 || base <= 0 || max < base {
			return fmt.Errorf("client: retry needs attempts >= 1 and 0 < base <= max (got %d, %v, %v)", attempts, base, max)
		}
		c.attempts, c.backoff, c.maxBackoff = attempts, base, max
		return nil
	}
}

// WithTimeout bounds each HTTP request (long polls add their wait to it).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("client: timeout must be positive")
		}
		c.timeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *config) error { c.userAgent = ua; return nil }
}

// New returns a client for the endpoint at baseURL (e.g.
// http://localhost:8080 or an API Gateway URL).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http(s)://host[:port][/path]", baseURL)
	}
	cfg := config{attempts: 6, backoff: 50 * time.Millisecond, maxBackoff: 5 * time.Second, userAgent: "streambed-go/0.1", timeout: 60 * time.Second}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.hc == nil {
		cfg.hc = &http.Client{Timeout: cfg.timeout}
	}
	return &Client{base: u, hc: cfg.hc, signer: cfg.signer, attempts: cfg.attempts, backoff: cfg.backoff, maxBackoff: cfg.maxBackoff, userAgent: cfg.userAgent}, nil
}

// BaseURL is the endpoint the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// call describes one API call.
type call struct {
	method string
	path   string // with query
	body   any
	header http.Header
	// idempotent: repeating the call cannot duplicate an effect (reads, and
	// writes made idempotent by producer ids or Idempotency-Keys), so it may
	// be retried even when its outcome is unknown.
	idempotent bool
}

// TransportError is a failure to get an HTTP answer (connection refused,
// reset, timeout). The request may or may not have had an effect.
type TransportError struct{ Err error }

func (e *TransportError) Error() string { return "client: " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// do performs a call with retries and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
	}
	var last error
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, attempt, last); err != nil {
				return last
			}
		}
		status, data, hdr, err := c.send(ctx, cl, body)
		if err != nil {
			last = err
			if ctx.Err() == nil && cl.idempotent {
				continue // the outcome is unknown: only safe to repeat if idempotent
			}
			return err
		}
		if status >= 200 && status < 300 {
			if out == nil || len(data) == 0 || status == http.StatusNoContent {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("client: decode %s %s answer: %w", cl.method, cl.path, err)
			}
			return nil
		}
		p := decodeProblem(status, data, hdr)
		last = p
		if !p.Retryable || (p.SideEffect == api.SideEffectMaybe && !cl.idempotent) {
			return p
		}
	}
	return last
}

func (c *Client) send(ctx context.Context, cl call, body []byte) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.base.String()+cl.path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if c.signer != nil {
		if err := c.signer.Sign(req, body); err != nil {
			return 0, nil, nil, fmt.Errorf("client: sign request: %w", err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, &TransportError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, &TransportError{Err: err}
	}
	return resp.StatusCode, data, resp.Header, nil
}

func decodeProblem(status int, data []byte, hdr http.Header) *api.Problem {
	var p api.Problem
	if json.Unmarshal(data, &p) == nil && p.Code != "" {
		return &p
	}
	// Not a Streambed problem (a proxy, API Gateway itself): classify by status.
	code := api.CodeInternal
	switch {
	case status == http.StatusUnauthorized:
		code = api.CodeUnauthenticated
	case status == http.StatusForbidden:
		code = api.CodeForbidden
	case status == http.StatusNotFound:
		code = api.CodeNotFound
	case status == http.StatusTooManyRequests:
		code = api.CodeThrottled
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		code = api.CodeUnavailable
	}
	out := api.NewProblem(code, strings.TrimSpace(string(data)))
	out.Status = status
	if status >= 500 {
		out.SideEffect = api.SideEffectMaybe
	}
	_ = hdr
	return out
}

func (c *Client) sleep(ctx context.Context, attempt int, cause error) error {
	p := retry.Policy{Base: c.backoff, Max: c.maxBackoff}
	var prob *api.Problem
	if errors.As(cause, &prob) && prob.Code == api.CodeThrottled {
		p.Base *= 4 // the server asked for less: back off further from the start
	}
	return retry.SleepCtx(ctx, p.Delay(attempt))
}

// Code returns the API error code of err ("" if it is not an API error).
func Code(err error) api.Code {
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return ""
}

// IsRetryable reports whether repeating what failed can succeed: the
// server said so, or the request never got an answer.
func IsRetryable(err error) bool {
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Retryable
	}
	var te *TransportError
	return errors.As(err, &te)
}

func esc(s string) string { return url.PathEscape(s) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
