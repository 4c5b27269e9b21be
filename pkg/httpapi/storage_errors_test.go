package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// sickBucket stalls or fails Puts once armed.
type sickBucket struct {
	segments.Bucket
	armed atomic.Bool
	fail  func(ctx context.Context) error
}

func (b *sickBucket) Put(ctx context.Context, key string, body []byte) error {
	if b.armed.Load() {
		return b.fail(ctx)
	}
	return b.Bucket.Put(ctx, key, body)
}

// sickTable stalls or fails Writes once armed, counting them.
type sickTable struct {
	offsets.Table
	armed  atomic.Bool
	writes atomic.Int64
	fail   func(ctx context.Context) error
}

func (t *sickTable) Write(ctx context.Context, ops ...offsets.Op) error {
	if t.armed.Load() {
		t.writes.Add(1)
		return t.fail(ctx)
	}
	return t.Table.Write(ctx, ops...)
}

func stall(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

// TestStorageFailuresAnswerPromptlyAndSafely: a stalled store meets the
// request's deadline (504, saying whether anything may have been
// written), a refusal no retry can fix fails at once (one write, 500, not
// retryable), a full disk is 507 — and no answer shows server paths.
func TestStorageFailuresAnswerPromptlyAndSafely(t *testing.T) {
	enospc := func(context.Context) error {
		return fmt.Errorf("%w: fsbucket: l0/x: write /srv/data/objects/.tmp/put-1: %w", segments.ErrRefused, syscall.ENOSPC)
	}
	cases := []struct {
		name          string
		objects, meta func(context.Context) error
		status        int
		code          string
		sideEffect    string
		retryable     bool
		maxWrites     int64 // metadata writes tried (0: not checked)
	}{
		{"object store stalls", stall, nil, 504, "timeout", "none", true, 0},
		{"metadata stalls", nil, stall, 504, "timeout", "maybe", true, 0},
		{"metadata refuses", nil, func(context.Context) error {
			return fmt.Errorf("%w: dynamotable: ValidationException: item too large", offsets.ErrRefused)
		}, 500, "storage_refused", "none", false, 1},
		{"object store refuses", func(context.Context) error {
			return fmt.Errorf("%w: s3bucket: put s3://b/k: AccessDenied", segments.ErrRefused)
		}, nil, 500, "storage_refused", "none", false, 0},
		{"disk full", enospc, nil, 507, "insufficient_storage", "none", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bucket := &sickBucket{Bucket: membucket.New(), fail: c.objects}
			table := &sickTable{Table: memtable.New(), fail: c.meta}
			e := newEnvWith(t, offsets.New(table), bucket, httpapi.Options{RequestTimeout: 300 * time.Millisecond})
			e.createTopic("t", 1)
			bucket.armed.Store(c.objects != nil)
			table.armed.Store(c.meta != nil)
			start := time.Now()
			r := e.do("POST", "/v1/topics/t/partitions/0/records", map[string]any{"records": []any{map[string]any{"value": "v"}}})
			took := time.Since(start)
			p := e.want(r, c.status, c.code)
			if p["side_effect"] != c.sideEffect || p["retryable"] != c.retryable {
				t.Fatalf("side_effect %v retryable %v, want %s %v: %s", p["side_effect"], p["retryable"], c.sideEffect, c.retryable, r.body)
			}
			if took > 5*time.Second {
				t.Fatalf("answered after %s", took)
			}
			if c.maxWrites > 0 && table.writes.Load() > c.maxWrites {
				t.Fatalf("%d metadata writes tried for a refusal", table.writes.Load())
			}
			if strings.Contains(string(r.body), "/srv/") || strings.Contains(string(r.body), ".tmp") {
				t.Fatalf("the answer shows a server path: %s", r.body)
			}
		})
	}
}
