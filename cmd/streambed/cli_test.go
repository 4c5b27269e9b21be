package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cli")

// fixedServer is an in-process API on in-memory storage with a clock that
// stands still, so every timestamp the CLI prints is the same each run.
func fixedServer(t *testing.T) string {
	t.Helper()
	at := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	now := func() time.Time { return at }
	b := broker.New(offsets.New(memtable.New(), offsets.WithClock(now)), membucket.New(), broker.Config{Now: now, PollMin: 5 * time.Millisecond, PollMax: 20 * time.Millisecond})
	srv := httptest.NewServer(httpapi.New(b, httpapi.Options{}).Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(b.Drain)
	return srv.URL
}

var topicID = regexp.MustCompile(`[0-9a-f]{24}`)

// TestCLIGolden runs every CLI subcommand against one server, in order,
// and compares each transcript (command, stdout, stderr, exit code) with
// testdata/cli/NAME.golden. Run with -update to accept new output.
func TestCLIGolden(t *testing.T) {
	url := fixedServer(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lines := write("lines.txt", "alice:login\nbob:view\nalice:buy\ncarol:login\n")
	nd := write("records.ndjson", `{"key":"k1","value":"plain text","headers":[{"name":"source","value":"web"}]}
{"key":"k2","value":{"amount":42,"currency":"EUR"},"timestamp":1795000000000}
{"key_b64":"AAEC","value_b64":"/w==","partition":0}
{"value":null,"key":"k1"}
`)
	raw := write("blob.bin", "one\nrecord\n")
	badND := write("bad.ndjson", "{\"key\":\"k\",\"value\":\"ok\"}\n{\"valeu\":\"typo\"}\n")
	badPart := write("bad-partition.ndjson", "{\"value\":\"a\"}\n{\"value\":\"b\",\"partition\":7}\n")

	steps := []struct {
		name string
		args []string
	}{
		{"topics-create", []string{"topics", "create", "clicks", "--partitions", "2", "--config", "retention.ms=604800000"}},
		{"topics-create-json", []string{"topics", "create", "events", "--json", "--config", "cleanup.policy=compact", "--config", "retention.bytes=1073741824"}},
		{"topics-create-bad-config", []string{"topics", "create", "x", "--config", "retention=1"}},
		{"topics-create-duplicate", []string{"topics", "create", "clicks"}},
		{"produce-lines", []string{"produce", "clicks", lines, "--key-sep", ":"}},
		{"produce-ndjson", []string{"produce", "events", nd, "--format", "ndjson"}},
		{"produce-raw", []string{"produce", "events", raw, "--format", "raw", "--partition", "0", "--header", "type=blob"}},
		{"produce-bad-ndjson", []string{"produce", "events", badND, "--format", "ndjson"}},
		{"produce-bad-partition", []string{"produce", "events", badPart, "--format", "ndjson"}},
		{"produce-missing-topic", []string{"produce", "nope", lines}},
		{"topics-list", []string{"topics", "list"}},
		{"topics-list-json", []string{"topics", "list", "--json"}},
		{"topics-describe", []string{"topics", "describe", "clicks"}},
		{"topics-describe-json", []string{"topics", "describe", "events", "--json"}},
		{"consume-text", []string{"consume", "clicks"}},
		{"consume-json", []string{"consume", "events", "--format", "json"}},
		{"consume-template", []string{"consume", "clicks", "--format", `%t/%p@%o %k=%s (%T) [%h] %K/%S\n`}},
		{"consume-offset", []string{"consume", "clicks", "--partition", "1", "--offset", "1"}},
		{"consume-tail", []string{"consume", "clicks", "--tail", "1", "--format", `%p %k %s\n`}},
		{"consume-from-time", []string{"consume", "events", "--from-time", "2026-11-24T09:00:00Z", "--format", `%o %k\n`}},
		{"consume-max-records", []string{"consume", "clicks", "--max-records", "2"}},
		{"consume-bad-format", []string{"consume", "clicks", "--format", "yaml"}},
		{"consume-group", []string{"consume", "clicks", "--group", "billing", "--format", `%p:%o %s\n`}},
		{"consume-group-again", []string{"consume", "clicks", "--group", "billing"}},
		{"groups-list", []string{"groups", "list"}},
		{"groups-list-json", []string{"groups", "list", "--json"}},
		{"groups-describe", []string{"groups", "describe", "billing"}},
		{"groups-lag", []string{"groups", "lag", "billing"}},
		{"groups-reset-earliest", []string{"groups", "reset", "billing", "--topic", "clicks", "--to", "earliest"}},
		{"groups-lag-json", []string{"groups", "lag", "billing", "--json"}},
		{"groups-reset-offset", []string{"groups", "reset", "billing", "--topic", "clicks", "--partition", "0", "--to", "1", "--json"}},
		{"groups-reset-missing-to", []string{"groups", "reset", "billing", "--topic", "clicks"}},
		{"groups-delete", []string{"groups", "delete", "billing"}},
		{"groups-describe-deleted", []string{"groups", "describe", "billing"}},
		{"topics-alter-partitions", []string{"topics", "alter", "clicks", "--partitions", "4"}},
		{"topics-alter-shrink", []string{"topics", "alter", "clicks", "--partitions", "2"}},
		{"topics-alter-config-json", []string{"topics", "alter", "clicks", "--config", "retention.ms=-1", "--json"}},
		{"topics-delete", []string{"topics", "delete", "events"}},
		{"topics-describe-deleted", []string{"topics", "describe", "events"}},
		{"topics-usage", []string{"topics"}},
		{"unreachable", []string{"topics", "list", "--url", "http://127.0.0.1:1", "--timeout", "2s"}},
	}
	for _, st := range steps {
		var stdout, stderr bytes.Buffer
		args := append([]string{}, st.args...)
		if len(args) > 1 && !strings.Contains(strings.Join(args, " "), "--url") {
			args = append(args, "--url", url)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code := run(ctx, args, &stdout, &stderr)
		cancel()
		got := fmt.Sprintf("$ streambed %s\n%s", strings.Join(st.args, " "), stdout.String())
		if stderr.Len() > 0 {
			got += "[stderr]\n" + stderr.String()
		}
		got += fmt.Sprintf("[exit %d]\n", code)
		got = strings.ReplaceAll(got, dir+string(os.PathSeparator), "")
		got = strings.ReplaceAll(got, url, "URL")
		got = topicID.ReplaceAllString(got, "<id>")
		golden := filepath.Join("testdata", "cli", st.name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestCLIGolden -update)", st.name, err)
		}
		if got != string(want) {
			t.Errorf("%s: output differs from %s\n--- got\n%s--- want\n%s", st.name, golden, got, want)
		}
	}
}

// TestProduceConsumeRoundTrip pipes a file into `streambed produce` (a
// real process reading its stdin) and checks `streambed consume` prints
// the file back byte for byte, in lines and in NDJSON form.
func TestProduceConsumeRoundTrip(t *testing.T) {
	url := fixedServer(t)
	var in bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&in, "line %05d {\"json\": true, \"n\": %d} ünïcödé\t%s\n", i, i, strings.Repeat("x", i%97))
	}
	in.WriteString("\n") // an empty record survives too
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "STREAMBED_TEST_CHILD=1", "STREAMBED_TEST_ARGS="+strings.Join(append(args, "--url", url), "\x1f"))
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("streambed %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	cli("", "topics", "create", "lines")
	cli(file, "produce", "lines")
	if got := cli("", "consume", "lines"); got != in.String() {
		t.Fatalf("consume printed %d bytes, the file has %d; first difference at byte %d", len(got), in.Len(), firstDiff(got, in.String()))
	}
	// JSON out, NDJSON in: a second topic fed from the first's JSON holds the same records.
	js := filepath.Join(t.TempDir(), "out.ndjson")
	if err := os.WriteFile(js, []byte(cli("", "consume", "lines", "--format", "json")), 0o644); err != nil {
		t.Fatal(err)
	}
	cli("", "topics", "create", "copy")
	cli(js, "produce", "copy", "--format", "ndjson")
	if got := cli("", "consume", "copy"); got != in.String() {
		t.Fatalf("NDJSON round trip differs at byte %d", firstDiff(got, in.String()))
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
