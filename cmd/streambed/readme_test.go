package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
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
	cmds := readmeCommands(t, string(readme), "quickstart")
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

// TestReadmeKafka runs the README's kcat session verbatim (only the ports
// change) against `streambed serve` as `make run` starts it, after the
// HTTP quick start's first two commands.
func TestReadmeKafka(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		if testenv.InCI() {
			t.Fatal("kcat is required in CI (interop/install.sh installs it)")
		}
		t.Skip("SKIPPED: kcat is not installed (apt-get install kcat, or ./interop/install.sh)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(t, string(readme), "kafka-quickstart")
	http := readmeCommands(t, string(readme), "quickstart")
	if len(cmds) != 3 {
		t.Fatalf("Kafka session changed shape (%d commands); update this test with it", len(cmds))
	}
	p := startServe(t, nil, "--data", t.TempDir(), "--kafka-addr", "127.0.0.1:0", "--kafka-auto-create-topics")
	var kafka string
	select {
	case kafka = <-p.kafka:
	case <-time.After(10 * time.Second):
		t.Fatal("serve printed no Kafka address")
	}
	host := strings.TrimPrefix(p.url, "http://")
	sh := func(cmd string) string {
		t.Helper()
		cmd = strings.ReplaceAll(strings.ReplaceAll(cmd, "localhost:8080", host), "localhost:9092", kafka)
		out, err := exec.Command("bash", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n%v: %s", cmd, err, out)
		}
		return string(out)
	}
	sh(http[0])
	sh(http[1])
	sh(cmds[0])
	if out := sh(cmds[1]); out != "0/0 alice=book\n0/1 bob=pen\n0/2 alice=lamp\n" {
		t.Fatalf("kcat consume printed %q", out)
	}
	if out := sh(cmds[2]); strings.Count(out, "alice=") != 2 || !strings.Contains(out, `bob={"item":"pen","qty":3}`) {
		t.Fatalf("kcat read of HTTP records printed %q", out)
	}
	p.stop()
}

// readmeCommands returns the commands (paragraphs, comments dropped) of
// the sh block between <!-- name --> and <!-- /name -->.
func readmeCommands(t *testing.T, readme, name string) []string {
	t.Helper()
	block := between(t, readme, "<!-- "+name+" -->", "<!-- /"+name+" -->")
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
	return cmds
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
