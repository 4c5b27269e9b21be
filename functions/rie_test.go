// Package functions_test runs the real Lambda function binaries (built for
// the host) under the AWS Lambda Runtime Interface Emulator, invoking them
// with recorded API Gateway v2, Function URL and EventBridge Scheduler
// events from testdata/, against MinIO and moto.
package functions_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/segments/s3bucket"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles every function for the host, once per test binary.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "streambed-functions-")
		if buildErr != nil {
			return
		}
		for _, fn := range []string{"produce", "consume", "admin", "compact"} {
			out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(binDir, fn), "./"+fn).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", fn, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// stack is a bucket and a table on the local stack, and the environment
// a function needs to use them.
type stack struct {
	env []string
}

func newStack(t *testing.T) stack {
	minio, user, password := testenv.MinIO(t)
	moto := testenv.Moto(t)
	name := testenv.Name("fn")
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(user, password, "")
	sc, err := s3bucket.NewClient(ctx, s3bucket.Config{Config: awsconf.Config{Endpoint: minio, Region: "us-east-1", Credentials: creds}, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	dc, err := dynamotable.NewClient(ctx, awsconf.Config{Endpoint: moto, Region: "us-east-1", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamotable.EnsureTable(ctx, dc, name); err != nil {
		t.Fatal(err)
	}
	return stack{env: []string{
		"AWS_ACCESS_KEY_ID=" + user, "AWS_SECRET_ACCESS_KEY=" + password, "AWS_REGION=us-east-1",
		"STREAMBED_S3_BUCKET=" + name, "STREAMBED_S3_ENDPOINT=" + minio, "STREAMBED_S3_PATH_STYLE=true",
		"STREAMBED_DYNAMODB_TABLE=" + name, "STREAMBED_DYNAMODB_ENDPOINT=" + moto, "STREAMBED_LOG_LEVEL=warn",
	}}
}

// rie is one function running under the emulator.
type rie struct {
	addr   string
	stdout *bytes.Buffer
	mu     *sync.Mutex
}

func startRIE(t *testing.T, fn string, env []string) rie {
	t.Helper()
	emulator := testenv.Require(t, "STREAMBED_TEST_RIE")
	bin := filepath.Join(build(t), fn)
	addr := testenv.FreeAddr(t)
	// Each emulator needs its own Runtime API port too (default 9001).
	cmd := exec.Command(emulator, "--runtime-interface-emulator-address", addr, "--runtime-api-address", testenv.FreeAddr(t), bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "AWS_LAMBDA_FUNCTION_NAME=streambed-"+fn)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", fn, out.String())
		}
	})
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return rie{addr: addr, stdout: &out.b, mu: &out.mu}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the emulator did not listen on %s:\n%s", addr, out.String())
	return rie{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func (r rie) output() string { r.mu.Lock(); defer r.mu.Unlock(); return r.stdout.String() }

// invoke sends an event from testdata (with __TOPIC__ replaced) through
// the Lambda invoke API and returns the raw result.
func (r rie) invoke(t *testing.T, event, topic string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", event))
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte("__TOPIC__"), []byte(topic))
	resp, err := http.Post("http://"+r.addr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("invoke %s: %d %v: %s", event, resp.StatusCode, err, out)
	}
	return out
}

type apigwResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

func httpResult(t *testing.T, raw []byte, status int) map[string]any {
	t.Helper()
	var r apigwResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("not an API Gateway v2 response: %s", raw)
	}
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body is not JSON: %q", r.Body)
	}
	return body
}

func TestFunctionsUnderRIE(t *testing.T) {
	st := newStack(t)
	admin := startRIE(t, "admin", st.env)
	produce := startRIE(t, "produce", st.env)
	consume := startRIE(t, "consume", st.env)
	compact := startRIE(t, "compact", st.env)
	topic := testenv.Name("t")

	created := httpResult(t, admin.invoke(t, "apigw-create-topic.json", topic), 201)
	if created["name"] != topic || created["partitions"] != 3.0 {
		t.Fatalf("created %v", created)
	}
	res := httpResult(t, produce.invoke(t, "apigw-produce.json", topic), 200)
	if res["failed_record_count"] != 0.0 || len(res["results"].([]any)) != 3 {
		t.Fatalf("produce %v", res)
	}
	// A base64-encoded request body (API Gateway encodes binary bodies).
	bin := httpResult(t, produce.invoke(t, "apigw-produce-binary.json", topic), 200)
	if bin["base_offset"] != 0.0 {
		t.Fatalf("binary produce %v", bin)
	}
	// "alice" and "bob" hash to partition 0 of 3 (Kafka's partitioner).
	got := httpResult(t, consume.invoke(t, "apigw-consume.json", topic), 200)
	recs := got["records"].([]any)
	if len(recs) != 3 || recs[1].(map[string]any)["value_json"].(map[string]any)["n"] != 2.0 {
		t.Fatalf("consume %v", got)
	}
	// Each function serves only its own routes.
	httpResult(t, consume.invoke(t, "apigw-produce-on-consume.json", topic), 404)

	// The admin function serves the web console's assets.
	var asset apigwResponse
	raw := admin.invoke(t, "apigw-console.json", topic)
	if err := json.Unmarshal(raw, &asset); err != nil || asset.StatusCode != 200 {
		t.Fatalf("the console's app.js from the admin function: %.300s", raw)
	}
	if asset.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(asset.Body)
		asset.Body = string(b)
	}
	if !strings.Contains(asset.Body, "async function sigv4(") {
		t.Fatalf("the admin function's /ui/app.js is not the console's: %.300s", asset.Body)
	}

	// A Function URL event is answered as a response stream: a JSON prelude,
	// eight NUL bytes, then the body; the stream ends before the deadline.
	raw = consume.invoke(t, "url-consume-sse.json", topic)
	prelude, body, ok := bytes.Cut(raw, make([]byte, 8))
	if !ok {
		t.Fatalf("no streaming prelude in %q", raw)
	}
	var head struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(prelude, &head); err != nil || head.StatusCode != 200 || head.Headers["Content-Type"] != "text/event-stream" {
		t.Fatalf("prelude %s (%v)", prelude, err)
	}
	if n := strings.Count(string(body), "event: record"); n != 3 || !strings.Contains(string(body), "event: end") {
		t.Fatalf("streamed body has %d records:\n%s", n, body)
	}

	// The scheduled compactor runs and publishes metrics in EMF.
	var stats map[string]any
	if err := json.Unmarshal(compact.invoke(t, "scheduler.json", topic), &stats); err != nil {
		t.Fatal(err)
	}
	if stats["partitions_visited"] != 3.0 || stats["errors"] != 0.0 {
		t.Fatalf("compaction stats %v", stats)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(compact.output(), `"Namespace":"Streambed"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no EMF metrics in the compact function's output:\n%s", compact.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestColdStart measures each function's init time: from process start to
// its first poll of the Runtime API for work (ready). Figures go to
// docs/benchmarks.md; nothing is asserted about speed.
func TestColdStart(t *testing.T) {
	st := newStack(t)
	dir := build(t)
	for _, fn := range []string{"produce", "consume", "admin", "compact"} {
		var times []time.Duration
		for range 5 {
			ready := make(chan time.Time, 1)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/invocation/next") {
					select {
					case ready <- time.Now():
					default:
					}
					<-r.Context().Done()
				}
			}))
			cmd := exec.Command(filepath.Join(dir, fn))
			cmd.Env = append(append(os.Environ(), st.env...), "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(api.URL, "http://"))
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case at := <-ready:
				times = append(times, at.Sub(start))
			case <-time.After(20 * time.Second):
				t.Fatalf("%s never polled for work", fn)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			api.CloseClientConnections()
			api.Close()
		}
		slices.Sort(times)
		t.Logf("%s: cold start to ready, median of 5: %v (min %v, max %v)", fn, times[2].Round(100*time.Microsecond), times[0].Round(100*time.Microsecond), times[4].Round(100*time.Microsecond))
	}
}
