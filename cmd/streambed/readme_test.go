package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's quick start verbatim (only the
// port changes) with curl and bash against a real `streambed serve`.
func TestReadmeQuickStart(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is required for the README test (apt-get install curl)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := between(t, string(readme), "<!-- quickstart -->", "<!-- /quickstart -->")
	block = between(t, block, "```sh\n", "```")
	var cmds []string
	for _, para := range strings.Split(strings.TrimSpace(block), "\n\n") {
		var lines []string
		for _, l := range strings.Split(para, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "#") {
				lines = append(lines, l)
			}
		}
		cmds = append(cmds, strings.Join(lines, "\n"))
	}
	if len(cmds) != 4 || !strings.Contains(cmds[3], "text/event-stream") {
		t.Fatalf("quick start changed shape (%d commands); update this test with it", len(cmds))
	}
	p := startServe(t, nil, "--data", t.TempDir())
	host := strings.TrimPrefix(p.url, "http://")
	sh := func(cmd string) string {
		t.Helper()
		out, err := exec.Command("bash", "-c", strings.ReplaceAll(cmd, "localhost:8080", host)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n%v: %s", cmd, err, out)
		}
		return string(out)
	}
	if out := sh(cmds[0]); !strings.Contains(out, `"name":"orders"`) || !strings.Contains(out, `"partitions":3`) {
		t.Fatalf("create topic printed %s", out)
	}
	if out := sh(cmds[1]); !strings.Contains(out, `"failed_record_count":0`) {
		t.Fatalf("produce printed %s", out)
	}
	if out := sh(cmds[2]); strings.Count(out, `"offset":`) != 3 || !strings.Contains(out, `"value_json":{"item":"lamp","qty":2}`) {
		t.Fatalf("consume printed %s", out)
	}
	// Tail in the background, produce again, and see the records arrive.
	sse := filepath.Join(t.TempDir(), "sse.out")
	tail := exec.Command("bash", "-c", "timeout 8 "+strings.ReplaceAll(cmds[3], "localhost:8080", host)+" > "+sse)
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	sh(cmds[1])
	deadline := time.Now().Add(6 * time.Second)
	for {
		out, _ := os.ReadFile(sse)
		if strings.Count(string(out), "event: record") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SSE tail printed %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = tail.Process.Kill()
	_ = tail.Wait()
	p.stop()
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("README lost its %q marker", start)
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		t.Fatalf("README lost its %q marker", end)
	}
	return s[:j]
}
