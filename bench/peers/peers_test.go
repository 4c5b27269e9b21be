package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEverySystemRuns: each peer runs a short load and reports a rate; the
// table has a row per measurement.
func TestEverySystemRuns(t *testing.T) {
	var out, log bytes.Buffer
	err := run(context.Background(), []string{"-duration", "300ms", "-small-clients", "2", "-large-clients", "1", "-record-bytes", "100"}, &out, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	rows := strings.Count(out.String(), "\n| ") // header separator excluded
	for _, name := range []string{"streambed (embedded)", "jetstream (fsync always)", "jetstream (default)", "disk (append + fdatasync)"} {
		if !strings.Contains(out.String(), "| "+name+" |") {
			t.Errorf("no row for %s:\n%s", name, out.String())
		}
	}
	if rows != 8 {
		t.Errorf("%d rows, want 8 (3 systems × 2 loads, and the disk twice):\n%s", rows, out.String())
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, " 0 records/s") {
			t.Errorf("a measurement made no progress: %s", line)
		}
	}
}

// TestKafkaRuns: the Kafka-protocol comparison measures Streambed through
// its listener (Apache Kafka itself needs -kafka-libs and is left to the
// benchmark).
func TestKafkaRuns(t *testing.T) {
	var out, log bytes.Buffer
	err := run(context.Background(), []string{"-kafka", "-kafka-records", "2000", "-runs", "1"}, &out, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(out.String(), "| streambed (embedded) | franz-go |") || strings.Contains(out.String(), "| 0 |") {
		t.Fatalf("table:\n%s\nlog:\n%s", out.String(), log.String())
	}
}
