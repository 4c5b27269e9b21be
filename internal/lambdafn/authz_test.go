package lambdafn

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambed/streambed/internal/authtest"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// authorizer loads a recorded API Gateway authorizer context naming p.
func authorizer(t *testing.T, file, p string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var a events.APIGatewayV2HTTPRequestContextAuthorizerDescription
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(data), "__PRINCIPAL__", p)), &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

// TestLambdaRouteTableAuthorization runs the route table through the
// Lambda adapter with recorded authorizer contexts: the principal API
// Gateway verified is held to the same policy inside the handler, so a
// produce-only caller cannot consume, commit or delete even if a route is
// exposed to it.
func TestLambdaRouteTableAuthorization(t *testing.T) {
	pol, _ := authtest.Policy(t)
	// The recorded JWT authorizer contexts name the test's principals by
	// their subject: map those subjects to them (a JWT subject is
	// otherwise principal "jwt:<sub>", never a static-token principal).
	pol.JWT.PrincipalMap = map[string]string{"writer": "writer", "admin": "admin", "nobody": "nobody"}
	authz, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	const ingestRole = "arn:aws:iam::123456789012:role/ingest"
	cases := []struct {
		name string
		auth func(s authtest.Sample) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
		want func(s authtest.Sample) string
	}{
		{"no authorizer, no token", func(authtest.Sample) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription { return nil },
			func(s authtest.Sample) string { return map[bool]string{true: "2xx", false: "401"}[s.Granted == ""] }},
		{"JWT authorizer, principal without the permission", func(authtest.Sample) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
			return authorizer(t, "authorizer-jwt.json", "nobody")
		}, func(s authtest.Sample) string {
			return map[bool]string{true: "2xx", false: "403"}[s.Granted == "" || s.Granted == "nobody"]
		}},
		{"JWT authorizer, principal with it", func(s authtest.Sample) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
			if s.Granted == "" {
				return nil
			}
			return authorizer(t, "authorizer-jwt.json", s.Granted)
		}, func(authtest.Sample) string { return "2xx" }},
		{"IAM authorizer, produce-only role", func(authtest.Sample) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
			return authorizer(t, "authorizer-iam.json", ingestRole)
		}, func(s authtest.Sample) string {
			// Producing to orders also lets it read orders' metadata, nothing else.
			metadata := strings.HasPrefix(s.Path, "/v1/topics/orders") && !strings.Contains(s.Path, "/records") && s.Body == "" && s.Granted == "reader"
			return map[bool]string{true: "2xx", false: "403"}[s.Granted == "" || s.Granted == "writer" || s.Granted == "nobody" || metadata]
		}},
	}
	for key, s := range authtest.Samples {
		method, _, _ := strings.Cut(key, " ")
		for _, c := range cases {
			store := offsets.New(memtable.New())
			bucket := membucket.New()
			b := broker.New(store, bucket, broker.Config{})
			authtest.Seed(t, b)
			h := HTTPHandler(httpapi.New(b, httpapi.Options{Auth: authz, Compactor: compactor.New(store, bucket, compactor.Config{})}).Handler())
			path, query, _ := strings.Cut(s.Path, "?")
			ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path, RawQueryString: query, Body: s.Body,
				Headers: map[string]string{"content-type": "application/json"}}
			ev.RequestContext.HTTP.Method = method
			ev.RequestContext.DomainName = "abc123def4.execute-api.us-east-1.amazonaws.com"
			ev.RequestContext.Authorizer = c.auth(s)
			raw, _ := json.Marshal(ev)
			out, err := h(context.Background(), raw)
			b.Drain()
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			resp := out.(*events.APIGatewayV2HTTPResponse)
			if strings.HasPrefix(key, "GET /ui") || key == "GET /{$}" {
				continue // the functions serve no console
			}
			if got, want := statusClass(resp.StatusCode), c.want(s); got != want {
				t.Errorf("%s with %s: %d, want %s: %s", key, c.name, resp.StatusCode, want, resp.Body)
			}
		}
	}
}

func statusClass(status int) string {
	switch {
	case status == 401 || status == 403:
		return map[int]string{401: "401", 403: "403"}[status]
	case status >= 200 && status < 400:
		return "2xx"
	}
	return "other"
}
