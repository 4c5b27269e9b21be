package main

import "testing"

func TestHumanMs(t *testing.T) {
	for ms, want := range map[int64]string{0: "0s", 850: "850ms", 1500: "1.5s", 350930: "5m50.9s", 7_380_000: "2h3m", 90_061_000: "25h1m"} {
		if got := humanMs(ms); got != want {
			t.Errorf("humanMs(%d) = %q, want %q", ms, got, want)
		}
	}
}
