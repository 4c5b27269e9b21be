package fsbucket_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/fsbucket"
	"github.com/streambed/streambed/pkg/segments/segmentstest"
)

func TestAcceptance(t *testing.T) {
	segmentstest.Run(t, func(t *testing.T) segments.Bucket {
		b, err := fsbucket.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestStaleTempsRemovedOnOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := fsbucket.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crash mid-upload: an old and a fresh temporary.
	old := filepath.Join(dir, ".tmp", "put-old")
	fresh := filepath.Join(dir, ".tmp", "put-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := fsbucket.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary (maybe another process's upload) removed: %v", err)
	}
	// Temporaries are never listed as objects.
	for info, err := range b.List(context.Background(), "", "") {
		t.Fatalf("listed %+v, %v in a bucket with only temporaries", info, err)
	}
}

func TestKeyThatIsAlsoAPrefix(t *testing.T) {
	b, err := fsbucket.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "a", []byte("y")); !errors.Is(err, segments.ErrInvalidKey) {
		t.Fatalf("Put(a) over directory a/ = %v, want ErrInvalidKey", err)
	}
	if err := b.Put(ctx, ".tmp/x", []byte("y")); !errors.Is(err, segments.ErrInvalidKey) {
		t.Fatalf("Put(.tmp/x) = %v, want ErrInvalidKey", err)
	}
}
