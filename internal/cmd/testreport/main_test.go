package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestReport: a run with a passing, a failing and two skipped tests reads
// as plain go test would print it, fails, and remembers both skips with
// their reasons; the summary lists them.
func TestReport(t *testing.T) {
	in, err := os.Open(filepath.Join("testdata", "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	r := &report{out: &out, buf: map[string]*strings.Builder{}}
	if err := r.read(in); err != nil {
		t.Fatal(err)
	}
	if !r.failed {
		t.Error("a run with a failing test did not fail")
	}
	skips := filepath.Join(t.TempDir(), "skips.txt")
	if err := appendSkips(skips, r.skipped); err != nil {
		t.Fatal(err)
	}
	if code := printSummary(&out, skips); code != 0 {
		t.Errorf("summary exit %d", code)
	}
	golden(t, filepath.Join("testdata", "run.golden"), out.Bytes())

	var none bytes.Buffer
	if code := printSummary(&none, filepath.Join(t.TempDir(), "absent.txt")); code != 0 || none.String() != "No test was skipped.\n" {
		t.Errorf("no skips: exit %d, %q", code, none.String())
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update after checking):\n%s", path, got)
	}
}
