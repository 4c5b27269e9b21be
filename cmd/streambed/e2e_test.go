package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
)

// TestMain lets the test binary double as the streambed binary: end-to-end
// tests start it as a child process running `serve`, which they can stop
// gracefully or kill -9.
func TestMain(m *testing.M) {
	if os.Getenv("STREAMBED_TEST_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, strings.Split(os.Getenv("STREAMBED_TEST_ARGS"), "\x1f"), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type serveProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	kafka  chan string // the Kafka listener's host:port, when serve prints one
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `streambed serve args...` on a free loopback port.
func startServe(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "STREAMBED_TEST_CHILD=1", "STREAMBED_TEST_ARGS="+strings.Join(args, "\x1f")), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1), kafka: make(chan string, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "kafka://"); i >= 0 {
				p.kafka <- sc.Text()[i+len("kafka://"):]
			} else if i := strings.Index(sc.Text(), "http://"); i >= 0 {
				lines <- sc.Text()[i:]
			}
		}
	}()
	select {
	case p.url = <-lines:
	case err := <-p.done:
		t.Fatalf("serve exited at start: %v\n%s", err, p.stderr)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("serve did not start\n%s", p.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop ends serve with SIGTERM and expects a clean exit.
func (p *serveProc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("serve exited with %v\n%s", err, p.stderr)
		}
	case <-time.After(40 * time.Second):
		p.t.Fatalf("serve did not stop on SIGTERM\n%s", p.stderr)
	}
}

func (p *serveProc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func call(t *testing.T, method, url string, body any, status int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, status, data)
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

// quickStart runs the README's sequence through Go, against any server.
func quickStart(t *testing.T, base string) {
	t.Helper()
	call(t, "POST", base+"/v1/topics", map[string]any{"name": "orders", "partitions": 3}, 201)
	res := call(t, "POST", base+"/v1/topics/orders/records", map[string]any{"records": []any{
		map[string]any{"key": "alice", "value_json": map[string]any{"item": "book", "qty": 1}},
		map[string]any{"key": "bob", "value_json": map[string]any{"item": "pen", "qty": 3}},
		map[string]any{"key": "alice", "value_json": map[string]any{"item": "lamp", "qty": 2}},
	}}, 200)
	if res["failed_record_count"] != 0.0 {
		t.Fatalf("produce %v", res)
	}
	got := call(t, "GET", base+"/v1/topics/orders/partitions/0/records?format=json", nil, 200)
	recs := got["records"].([]any)
	if len(recs) != 3 || recs[2].(map[string]any)["value_json"].(map[string]any)["item"] != "lamp" {
		t.Fatalf("consume %v", got)
	}
	// SSE tail sees a record produced after it started.
	req, _ := http.NewRequest("GET", base+"/v1/topics/orders/partitions/0/records?from=latest", nil)
	req.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	call(t, "POST", base+"/v1/topics/orders/records", map[string]any{"records": []any{map[string]any{"key": "alice", "value": "tailed"}}}, 200)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"tailed"`) {
			return
		}
	}
	t.Fatalf("SSE tail never saw the new record (%v)", sc.Err())
}

func TestEmbeddedEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	quickStart(t, p.url)
	p.stop()
	// Data survives a restart.
	p = startServe(t, nil, "--data", dir)
	got := call(t, "GET", p.url+"/v1/topics/orders/partitions/0/records", nil, 200)
	if len(got["records"].([]any)) != 4 || got["log_end_offset"] != 4.0 {
		t.Fatalf("after restart %v", got)
	}
	// Compaction and fsck through the running server...
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"compact", "--url", p.url}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"partitions_visited": 3`) {
		t.Fatalf("compact --url: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"fsck", "--url", p.url}, &out, &errb); code != 0 || !strings.Contains(out.String(), "clean") {
		t.Fatalf("fsck --url: %d %s %s", code, out.String(), errb.String())
	}
	p.stop()
	// ...and directly on the data directory once it stopped.
	out.Reset()
	if code := run(context.Background(), []string{"fsck", "--data", dir, "--json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"violations": []`) {
		t.Fatalf("fsck --data: %d %s %s", code, out.String(), errb.String())
	}
}

func TestMinIOMotoEndToEnd(t *testing.T) {
	minio, user, password := testenv.MinIO(t)
	moto := testenv.Moto(t)
	bucket, table := testenv.Name("e2e"), testenv.Name("e2e")
	createBucket(t, minio, user, password, bucket)
	env := []string{"AWS_ACCESS_KEY_ID=" + user, "AWS_SECRET_ACCESS_KEY=" + password, "AWS_REGION=us-east-1"}
	args := []string{"--s3-bucket", bucket, "--s3-endpoint", minio, "--s3-path-style", "--dynamodb-table", table, "--dynamodb-endpoint", moto, "--create-table"}
	p := startServe(t, env, append(args, "--log-level", "info")...)
	info := call(t, "GET", p.url+"/v1", nil, 200)
	if b := info["backends"].(map[string]any); b["objects"] != "s3" || b["metadata"] != "dynamodb" {
		t.Fatalf("backends %v", b)
	}
	// The start-up line names the backends, and no data directory: none is used.
	if log := p.stderr.String(); !strings.Contains(log, "objects=s3 metadata=dynamodb") || strings.Contains(log, " data=") {
		t.Fatalf("start-up log on S3 + DynamoDB:\n%s", log)
	}
	quickStart(t, p.url)
	p.stop()
	p = startServe(t, env, args...)
	got := call(t, "GET", p.url+"/v1/topics/orders/partitions/0/records", nil, 200)
	if len(got["records"].([]any)) != 4 {
		t.Fatalf("after restart %v", got)
	}
	p.stop()
}

// TestKillNineLosesNoAcknowledgedRecord produces from several clients,
// kills serve with SIGKILL mid-load, restarts it on the same data, and
// checks every acknowledged record is at its offset, exactly once, with
// offsets dense.
func TestKillNineLosesNoAcknowledgedRecord(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	call(t, "POST", p.url+"/v1/topics", map[string]any{"name": "load", "partitions": 4}, 201)
	type ack struct {
		Partition float64 `json:"partition"`
		Offset    float64 `json:"offset"`
	}
	var mu sync.Mutex
	acked := map[string]ack{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var recs []any
				for j := range 20 {
					recs = append(recs, map[string]any{"key": fmt.Sprintf("k%d", j), "value": fmt.Sprintf("w%d-%d-%d", w, i, j)})
				}
				body, _ := json.Marshal(map[string]any{"records": recs})
				resp, err := client.Post(p.url+"/v1/topics/load/records", "application/json", bytes.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				var out struct {
					Results []ack `json:"results"`
				}
				if err := json.Unmarshal(data, &out); err != nil {
					continue // cut off mid-response: unknown, not acknowledged
				}
				mu.Lock()
				for j, r := range out.Results {
					acked[fmt.Sprintf("w%d-%d-%d", w, i, j)] = r
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.kill9()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the kill; the test proves nothing")
	}

	p = startServe(t, nil, "--data", dir)
	seen := map[string]ack{}
	for part := range 4 {
		next := 0.0
		for {
			got := call(t, "GET", fmt.Sprintf("%s/v1/topics/load/partitions/%d/records?offset=%d&max_records=5000", p.url, part, int(next)), nil, 200)
			recs := got["records"].([]any)
			for _, r := range recs {
				m := r.(map[string]any)
				if m["offset"] != next {
					t.Fatalf("partition %d: offset %v where %v was expected (gap)", part, m["offset"], next)
				}
				v := m["value"].(string)
				if prev, dup := seen[v]; dup {
					t.Fatalf("record %s stored twice: %v and %d/%v", v, prev, part, next)
				}
				seen[v] = ack{float64(part), next}
				next++
			}
			if next >= got["log_end_offset"].(float64) {
				break
			}
		}
	}
	for v, a := range acked {
		if got, ok := seen[v]; !ok || got != a {
			t.Fatalf("acknowledged record %s at %v: found %v (present %v)", v, a, got, ok)
		}
	}
	t.Logf("%d acknowledged records, %d stored (the rest were in flight at the kill)", len(acked), len(seen))
	p.stop()
}
