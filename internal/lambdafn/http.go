package lambdafn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/streambed/streambed/pkg/auth"
)

// deadlineMargin is how long before the invocation deadline a request's
// context ends: time to finish the answer and leave no commit half sent.
const deadlineMargin = 1500 * time.Millisecond

// probe identifies an HTTP event's source.
type probe struct {
	Version        string `json:"version"`
	RequestContext struct {
		DomainName string `json:"domainName"`
	} `json:"requestContext"`
}

// HTTPHandler adapts h to Lambda events: API Gateway HTTP API (payload
// v2.0) and Function URL events. Function URL events are answered as a
// response stream (the URL must be in RESPONSE_STREAM mode) unless
// STREAMBED_URL_STREAMING=false; everything else is buffered.
func HTTPHandler(h http.Handler) func(context.Context, json.RawMessage) (any, error) {
	streaming := envBool("STREAMBED_URL_STREAMING", true)
	stream := lambdaurl.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A function URL with AWS_IAM auth names the verified caller.
		if ev, ok := lambdaurl.RequestFromContext(r.Context()); ok && ev.RequestContext.Authorizer != nil && ev.RequestContext.Authorizer.IAM != nil {
			if arn := ev.RequestContext.Authorizer.IAM.UserARN; arn != "" {
				r = r.WithContext(auth.WithGateway(r.Context(), auth.GatewayIdentity{IAMARN: arn}))
			}
		}
		h.ServeHTTP(w, r)
	}))
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p probe
		if err := json.Unmarshal(raw, &p); err != nil || p.Version != "2.0" {
			return nil, fmt.Errorf("not an API Gateway v2 or Function URL event (version %q)", p.Version)
		}
		ctx, cancel := invocationContext(ctx, deadlineMargin)
		if streaming && strings.Contains(p.RequestContext.DomainName, ".lambda-url.") {
			var ev events.LambdaFunctionURLRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				cancel()
				return nil, err
			}
			// The body streams after we return: cancel when it is done.
			resp, err := stream(ctx, &ev)
			if err != nil {
				cancel()
				return nil, err
			}
			resp.Body = &cancelOnEOF{r: resp.Body, cancel: cancel}
			return resp, nil
		}
		defer cancel()
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		return serveBuffered(ctx, h, &ev)
	}
}

type cancelOnEOF struct {
	r interface {
		Read([]byte) (int, error)
	}
	cancel context.CancelFunc
}

func (c *cancelOnEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

// serveBuffered runs h on an API Gateway v2 (or buffered Function URL)
// request and returns the whole response.
func serveBuffered(ctx context.Context, h http.Handler, ev *events.APIGatewayV2HTTPRequest) (*events.APIGatewayV2HTTPResponse, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("event body: %w", err)
		}
	}
	url := ev.RawPath
	if ev.RawQueryString != "" {
		url += "?" + ev.RawQueryString
	}
	if id, ok := gatewayIdentity(ev.RequestContext.Authorizer); ok {
		ctx = auth.WithGateway(ctx, id)
	}
	req, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range ev.Headers {
		// API Gateway joins repeated headers with commas.
		req.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	req.Host = ev.RequestContext.DomainName
	req.ContentLength = int64(len(body))
	w := &bufferedWriter{header: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	resp := &events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: map[string]string{}}
	for k, v := range w.header {
		if k == "Set-Cookie" {
			resp.Cookies = v
			continue
		}
		resp.Headers[k] = strings.Join(v, ",")
	}
	out := w.buf.Bytes()
	if utf8.Valid(out) {
		resp.Body = string(out)
	} else {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(out), true
	}
	return resp, nil
}

// bufferedWriter collects a response. It is a Flusher (a no-op) so
// handlers that stream still work; their output is just delivered whole.
type bufferedWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (w *bufferedWriter) Header() http.Header { return w.header }
func (w *bufferedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(p)
}
func (w *bufferedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bufferedWriter) Flush() {}

// gatewayIdentity is the caller API Gateway's authorizer verified: JWT
// claims or an IAM caller. None when the route has no authorizer.
func gatewayIdentity(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) (auth.GatewayIdentity, bool) {
	switch {
	case a == nil:
		return auth.GatewayIdentity{}, false
	case a.IAM != nil && a.IAM.UserARN != "":
		return auth.GatewayIdentity{IAMARN: a.IAM.UserARN}, true
	case a.JWT != nil && len(a.JWT.Claims) > 0:
		return auth.GatewayIdentity{Claims: a.JWT.Claims}, true
	}
	return auth.GatewayIdentity{}, false
}
