package main

import (
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
