package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestHumanMs(t *testing.T) {
	for ms, want := range map[int64]string{0: "0s", 850: "850ms", 1500: "1.5s", 350930: "5m50.9s", 7_380_000: "2h3m", 90_061_000: "25h1m"} {
		if got := humanMs(ms); got != want {
			t.Errorf("humanMs(%d) = %q, want %q", ms, got, want)
		}
	}
}

func TestHoistFlags(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"--url http://x topics list", "topics list --url http://x"},
		{"--url=http://x topics describe orders", "topics describe --url=http://x orders"},
		{"--json groups lag billing", "groups lag --json billing"},
		{"--url http://x produce clicks", "produce --url http://x clicks"},
		{"topics list --url http://x", "topics list --url http://x"},
		{"--help", "--help"},
	} {
		got := strings.Join(hoistFlags(strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// TestInterruptIsANormalEnd: a command ended by an interrupt (its context
// cancelled) exits 130 and prints no error.
func TestInterruptIsANormalEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"consume", "clicks", "--url", "http://127.0.0.1:1", "-f"}, &stdout, &stderr)
	if code != 130 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestParseConfigNamesTheKeyAsTyped: errors name the key the user typed;
// Kafka's names map to the API's.
func TestParseConfigNamesTheKeyAsTyped(t *testing.T) {
	if _, err := parseConfig([]string{"retention.ms=abc"}); err == nil || !strings.Contains(err.Error(), "--config retention.ms:") {
		t.Fatalf("retention.ms=abc: %v", err)
	}
	cfg, err := parseConfig([]string{"max.message.bytes=2048", "message.timestamp.type=LogAppendTime", "retention_ms=5"})
	if err != nil || *cfg.MaxRecordBytes != 2048 || *cfg.TimestampType != "log_append" || *cfg.RetentionMs != 5 {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := parseConfig([]string{"no.such=1"}); err == nil || !strings.Contains(err.Error(), `"no.such"`) {
		t.Fatalf("unknown key: %v", err)
	}
}
