package lambdafn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambed/streambed/pkg/compactor"
)

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("X-Echo", r.Method+" "+r.URL.String()+" "+r.Header.Get("Cookie")+" "+r.RemoteAddr)
		if r.URL.Query().Get("binary") == "1" {
			_, _ = w.Write([]byte{0xff, 0x00, 0xfe})
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write(body)
	})
}

func apigwEvent(t *testing.T, ev events.APIGatewayV2HTTPRequest) json.RawMessage {
	t.Helper()
	ev.Version = "2.0"
	b, _ := json.Marshal(ev)
	return b
}

func TestBufferedAdapter(t *testing.T) {
	h := HTTPHandler(echo())
	ev := events.APIGatewayV2HTTPRequest{
		RawPath: "/v1/x", RawQueryString: "a=1&b=2", Cookies: []string{"s=1", "t=2"},
		Body: base64.StdEncoding.EncodeToString([]byte("payload\x00")), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "id.execute-api.us-east-1.amazonaws.com", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", SourceIP: "203.0.113.9"}},
	}
	out, err := h(context.Background(), apigwEvent(t, ev))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(*events.APIGatewayV2HTTPResponse)
	if resp.StatusCode != 418 || resp.Body != "payload\x00" || resp.IsBase64Encoded {
		t.Fatalf("response %+v", resp)
	}
	if got := resp.Headers["X-Echo"]; got != "POST /v1/x?a=1&b=2 s=1; t=2 203.0.113.9" {
		t.Fatalf("request seen as %q", got)
	}
	if len(resp.Cookies) != 2 {
		t.Fatalf("cookies %v", resp.Cookies)
	}
	ev.RawQueryString = "binary=1"
	out, _ = h(context.Background(), apigwEvent(t, ev))
	resp = out.(*events.APIGatewayV2HTTPResponse)
	if !resp.IsBase64Encoded || resp.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}) {
		t.Fatalf("binary response %+v", resp)
	}
	if _, err := h(context.Background(), json.RawMessage(`{"source":"aws.events"}`)); err == nil {
		t.Fatal("a non-HTTP event was accepted")
	}
}

func TestFunctionURLStreams(t *testing.T) {
	h := HTTPHandler(echo())
	ev := events.APIGatewayV2HTTPRequest{RawPath: "/s", Body: "streamed",
		RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "abc.lambda-url.us-east-1.on.aws", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "PUT"}}}
	out, err := h(context.Background(), apigwEvent(t, ev))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(*events.LambdaFunctionURLStreamingResponse)
	if !ok || resp.StatusCode != 418 {
		t.Fatalf("not a streaming response: %T %+v", out, out)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "streamed" {
		t.Fatalf("streamed body %q", body)
	}
}

func TestEMF(t *testing.T) {
	var buf bytes.Buffer
	emitCompaction(&buf, "compact", compactor.Stats{BytesMerged: 42, ObjectsDeleted: 3})
	emitLag(&buf, "billing", 10, 7, 1500)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Group       string
		ConsumerLag int64
	}
	if err := json.Unmarshal([]byte(lines[1]), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.AWS.CloudWatchMetrics[0]
	if m.Namespace != "Streambed" || m.Dimensions[0][0] != "Group" || doc.Group != "billing" || doc.ConsumerLag != 10 || len(m.Metrics) != 3 {
		t.Fatalf("EMF record %s", lines[1])
	}
	if !strings.Contains(lines[0], `"BytesMerged":42`) {
		t.Fatalf("compaction record %s", lines[0])
	}
}
