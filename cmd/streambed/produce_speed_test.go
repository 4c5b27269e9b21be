package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// statusCounter counts answers by status.
type statusCounter struct {
	next     http.Handler
	conflict atomic.Int64
	total    atomic.Int64
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (s *statusCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, code: 200}
	s.next.ServeHTTP(sw, r)
	s.total.Add(1)
	if sw.code == http.StatusConflict {
		s.conflict.Add(1)
	}
}

// TestProduceRunsAreSteady: `produce` of 300k lines, ten times, each run a
// new idempotent producer. No request may be refused as out of order (the
// producer must never have a batch overtake the first one of a partition)
// and no run may take over twice the median: the old failure mode was half
// the requests answered 409 and a run 30 times slower.
func TestProduceRunsAreSteady(t *testing.T) {
	if testing.Short() {
		t.Skip("300k lines x 10 runs")
	}
	b := broker.New(offsets.New(memtable.New()), membucket.New(), broker.Config{})
	counter := &statusCounter{next: httpapi.New(b, httpapi.Options{}).Handler()}
	srv := httptest.NewServer(counter)
	t.Cleanup(srv.Close)
	t.Cleanup(b.Drain)

	var lines bytes.Buffer
	for i := range 300_000 {
		fmt.Fprintf(&lines, "user-%d:event %06d\n", i%1000, i)
	}
	file := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var stderr bytes.Buffer
	if code := run(ctx, []string{"topics", "create", "steady", "--partitions", "4", "--url", srv.URL}, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("create: %s", stderr.String())
	}
	var took []time.Duration
	for n := range 10 {
		stderr.Reset()
		start := time.Now()
		code := run(ctx, []string{"produce", "steady", file, "--key-sep", ":", "--progress", "never", "--url", srv.URL}, &bytes.Buffer{}, &stderr)
		took = append(took, time.Since(start))
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", n, code, stderr.String())
		}
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	t.Logf("runs %v, median %s, %d requests", took, median, counter.total.Load())
	if c := counter.conflict.Load(); c > 0 {
		t.Errorf("%d of %d requests answered 409", c, counter.total.Load())
	}
	for n, d := range took {
		if d > 2*median {
			t.Errorf("run %d took %s, over twice the median %s", n, d, median)
		}
	}
}
