package awsauth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/client/awsauth"
)

var (
	creds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "")
	at    = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

// TestSignedRequestVerifies sends a signed request through the client and
// verifies it at the server the way IAM does: recompute the signature from
// what arrived (method, path, query, signed headers, body hash).
func TestSignedRequestVerifies(t *testing.T) {
	var got, want string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = r.Header.Get("Authorization")
		want = resign(t, r, body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"results":[{"partition":0,"offset":0}]}`)
	}))
	defer srv.Close()
	s, err := awsauth.New(context.Background(), awsauth.ServiceAPIGateway, awsauth.WithCredentials(creds), awsauth.WithRegion("eu-west-1"), awsauth.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL, client.WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Produce(context.Background(), "orders", []client.Record{{Partition: 0, Value: []byte("hello")}}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/eu-west-1/execute-api/aws4_request, SignedHeaders=") {
		t.Fatalf("authorization header %q", got)
	}
	if got != want {
		t.Fatalf("signature does not verify:\n got %s\nwant %s", got, want)
	}
}

func resign(t *testing.T, r *http.Request, body []byte) string {
	t.Helper()
	auth := r.Header.Get("Authorization")
	i := strings.Index(auth, "SignedHeaders=")
	if i < 0 {
		return ""
	}
	signed := strings.Split(strings.SplitN(auth[i+len("SignedHeaders="):], ",", 2)[0], ";")
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	for _, h := range signed {
		if h != "host" {
			req.Header.Set(h, r.Header.Get(h))
		}
	}
	req.ContentLength = r.ContentLength // Go moves it out of the header map
	c, _ := creds.Retrieve(context.Background())
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash != hexSHA(body) {
		t.Errorf("payload hash %s does not match the body", hash)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hash, "execute-api", "eu-west-1", at); err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

func TestNewRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := awsauth.New(ctx, "s3", awsauth.WithCredentials(creds), awsauth.WithRegion("us-east-1")); err == nil {
		t.Fatal("service s3 accepted")
	}
	if _, err := awsauth.New(ctx, awsauth.ServiceFunctionURL, awsauth.WithCredentials(creds), awsauth.WithRegion("us-east-1")); err != nil {
		t.Fatal(err)
	}
}
