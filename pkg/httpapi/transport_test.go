package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// rawServer serves the API over a real listener wrapped as serve wraps it.
func rawServer(t *testing.T, opts httpapi.Options, bucket segments.Bucket) string {
	t.Helper()
	if bucket == nil {
		bucket = membucket.New()
	}
	b := broker.New(offsets.New(memtable.New()), bucket, broker.Config{})
	t.Cleanup(b.Drain)
	if _, err := b.CreateTopic(context.Background(), "orders", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: httpapi.New(b, opts).Handler(), MaxHeaderBytes: 8 << 10}
	go func() { _ = hs.Serve(httpapi.ProblemListener(ln)) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// TestServerLevelErrorsAreProblems: requests Go's HTTP server refuses
// before any handler runs are still answered with problem+json.
func TestServerLevelErrorsAreProblems(t *testing.T) {
	addr := rawServer(t, httpapi.Options{}, nil)
	for _, c := range []struct {
		name, request string
		status        int
		code          string
	}{
		{"bad escape in the path", "GET /v1/topics/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"},
		{"bad header bytes", "GET /v1 HTTP/1.1\r\nHost: x\r\nBad\x01Name: y\r\n\r\n", 400, "invalid_request"},
		{"headers too large", "GET /v1 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, "headers_too_large"},
		{"unknown HTTP version", "GET /v1 HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
		{"unknown transfer coding", "POST /v1/topics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "not_implemented"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, c.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" || p["code"] != c.code || p["status"] != float64(c.status) {
				t.Fatalf("%d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), p)
			}
		})
	}
}

// TestSlowBodyIsCutOff: a body trickling in below the minimum rate is
// answered 408 after the grace period, not read for as long as the client
// likes; nothing is stored.
func TestSlowBodyIsCutOff(t *testing.T) {
	addr := rawServer(t, httpapi.Options{MinBodyRate: 1 << 20}, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"records":[{"value":"` + strings.Repeat("x", 1<<20) + `"}]}`
	fmt.Fprintf(conn, "POST /v1/topics/orders/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	done := make(chan struct{})
	go func() { // 1 KB/s
		defer close(done)
		for i := 0; i < len(body) && time.Since(start) < 30*time.Second; i += 1024 {
			if _, err := io.WriteString(conn, body[i:min(i+1024, len(body))]); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	var p map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != 408 || p["code"] != "request_timeout" {
		t.Fatalf("%d %v", resp.StatusCode, p)
	}
	if took > 15*time.Second {
		t.Fatalf("cut off after %s", took)
	}
	conn.Close()
	<-done
}

// slowPuts holds every upload until released, so bodies stay in flight.
type slowPuts struct {
	segments.Bucket
	release chan struct{}
}

func (s *slowPuts) Put(ctx context.Context, key string, body []byte) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Bucket.Put(ctx, key, body)
}

// TestInflightBytesAreBounded: with room for two 4 MiB bodies, a burst of
// eight concurrent ones holds two; the rest wait, then get 429 with
// Retry-After — none is read into memory meanwhile.
func TestInflightBytesAreBounded(t *testing.T) {
	bucket := &slowPuts{Bucket: membucket.New(), release: make(chan struct{})}
	addr := rawServer(t, httpapi.Options{MaxInflightBytes: 9 << 20}, bucket)
	rec := `{"value":"` + strings.Repeat("x", 1<<20-100) + `"}`
	body := []byte(`{"records":[` + strings.Join([]string{rec, rec, rec, rec}, ",") + `]}`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := ""
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post("http://"+addr+"/v1/topics/orders/records", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 429 {
				retryAfter = resp.Header.Get("Retry-After")
			}
			mu.Unlock()
		}()
	}
	time.Sleep(3 * time.Second) // the waiting ones give up after 2 s
	close(bucket.release)
	wg.Wait()
	if codes[200] != 2 || codes[429] != 6 || retryAfter == "" {
		t.Fatalf("answers %v (Retry-After %q), want 2 stored and 6 refused", codes, retryAfter)
	}
}
