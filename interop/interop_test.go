// Package interop runs Kafka clients written by others against a
// Streambed node: kcat (librdkafka from Debian), Python's confluent-kafka,
// Apache Kafka's Java client and kafkajs. Each client's program lives in
// a folder of its own here; interop/install.sh installs the clients
// (pinned, into bin/) and writes where they are to bin/interop.env, which
// `make test` loads. Without a client the test skips loudly; with CI set
// it fails.
package interop

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/kafkaapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// startNode serves a Kafka listener on the embedded default's storage (a
// bbolt table and a directory of objects, as `make run` has them) and
// returns its address and broker.
func startNode(t *testing.T) (string, *broker.Broker) {
	t.Helper()
	table, bucket := testenv.Embedded(t, t.TempDir())
	b := broker.New(offsets.New(table), bucket, broker.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kafkaapi.New(b, kafkaapi.Config{NodeID: -1}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		b.Drain()
	})
	return ln.Addr().String(), b
}

// requireClient returns the value of the variable install.sh writes for a
// client, or stops the test: Fatal in CI, a loud Skip elsewhere.
func requireClient(t *testing.T, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: run ./interop/install.sh and `set -a; . bin/interop.env; set +a`, or just `make test`"
	if testenv.InCI() {
		t.Fatal("CI is set and a Kafka client is missing: " + msg)
	}
	t.Skip("SKIPPED (client not installed): " + msg)
	return ""
}

// run runs a client program and fails the test with its output if it
// fails; it returns standard output.
func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), tail(errb.String(), 4000))
	}
	return out.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestKcat: kcat produces and consumes with every codec, consumes as a
// group member (-G), and starts from a timestamp with -o s@.
func TestKcat(t *testing.T) {
	kcat := requireClient(t, "STREAMBED_TEST_KCAT")
	addr, b := startNode(t)
	ctx := context.Background()
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			if _, err := b.CreateTopic(ctx, topic, 2, offsets.DefaultTopicConfig()); err != nil {
				t.Fatal(err)
			}
			var in strings.Builder
			for i := range 20 {
				fmt.Fprintf(&in, "k%d:%s-%d\n", i, codec, i)
			}
			run(t, in.String(), kcat, "-b", addr, "-t", topic, "-P", "-K:", "-z", codec)
			out := run(t, "", kcat, "-b", addr, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
			got := strings.Fields(out)
			if len(got) != 20 {
				t.Fatalf("consumed %d records: %q", len(got), out)
			}
			seen := map[string]bool{}
			for _, kv := range got {
				seen[kv] = true
			}
			for i := range 20 {
				if want := fmt.Sprintf("k%d=%s-%d", i, codec, i); !seen[want] {
					t.Errorf("missing %s in %q", want, out)
				}
			}
		})
	}
	t.Run("as a group member", func(t *testing.T) {
		if _, err := b.CreateTopic(ctx, "kcat-group", 3, offsets.DefaultTopicConfig()); err != nil {
			t.Fatal(err)
		}
		var in strings.Builder
		for i := range 30 {
			fmt.Fprintf(&in, "k%d:v%d\n", i, i)
		}
		run(t, in.String(), kcat, "-b", addr, "-t", "kcat-group", "-P", "-K:")
		// -G joins with the classic protocol; -e leaves at the end,
		// committing what it read.
		out := run(t, "", kcat, "-b", addr, "-G", "kcat-members", "kcat-group", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
		if got := strings.Fields(out); len(got) != 30 {
			t.Fatalf("the member read %d records: %q", len(got), out)
		}
		committed, err := b.CommittedOffsets(ctx, "kcat-members", "kcat-group")
		if err != nil {
			t.Fatal(err)
		}
		sum := int64(0)
		for _, c := range committed {
			sum += c.Offset
		}
		if sum != 30 {
			t.Fatalf("committed offsets %+v sum to %d, want 30", committed, sum)
		}
	})
	t.Run("from a timestamp", func(t *testing.T) {
		if _, err := b.CreateTopic(ctx, "kcat-time", 1, offsets.DefaultTopicConfig()); err != nil {
			t.Fatal(err)
		}
		run(t, "early-1\nearly-2\n", kcat, "-b", addr, "-t", "kcat-time", "-P", "-p", "0")
		time.Sleep(20 * time.Millisecond) // the next records' timestamps must be later than the cut
		cut := time.Now().UnixMilli()
		time.Sleep(20 * time.Millisecond)
		run(t, "late-1\nlate-2\n", kcat, "-b", addr, "-t", "kcat-time", "-P", "-p", "0")
		out := run(t, "", kcat, "-b", addr, "-t", "kcat-time", "-C", "-o", fmt.Sprintf("s@%d", cut), "-e", "-q", "-f", "%s@%o\n")
		if got := strings.Fields(out); len(got) != 2 || got[0] != "late-1@2" || got[1] != "late-2@3" {
			t.Fatalf("from s@%d: %q", cut, out)
		}
	})
}

// TestConfluentKafkaPython: admin, an idempotent producer, a consumer
// with assign, and group members of both protocols, through librdkafka
// 2.16 (interop/python/interop.py).
func TestConfluentKafkaPython(t *testing.T) {
	python := requireClient(t, "STREAMBED_TEST_CONFLUENT_PYTHON")
	addr, _ := startNode(t)
	out := run(t, "", python, filepath.Join("python", "interop.py"), addr, "py-interop")
	if !strings.Contains(out, "python interop: OK") {
		t.Fatalf("output: %s", out)
	}
}

// TestJavaClient: AdminClient, an idempotent producer, a consumer with
// assign and seek, group members of both protocols (classic and
// consumer), and a static member (group.instance.id) restarted without a
// rebalance in each, through Apache Kafka's Java client (interop/java).
func TestJavaClient(t *testing.T) {
	cp := requireClient(t, "STREAMBED_TEST_JAVA_CLASSPATH")
	addr, _ := startNode(t)
	out := run(t, "", "java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, "dev.streambed.interop.Interop", addr, "java-interop")
	if !strings.Contains(out, "java interop: OK") {
		t.Fatalf("output: %s", out)
	}
}

// TestKafkaJS: admin, an idempotent producer and a group member through
// kafkajs (interop/node); its records are also read back here.
func TestKafkaJS(t *testing.T) {
	dir := requireClient(t, "STREAMBED_TEST_KAFKAJS")
	addr, b := startNode(t)
	out := run(t, "", "node", filepath.Join(dir, "interop.js"), addr, "js-interop")
	if !strings.Contains(out, "kafkajs interop: OK") {
		t.Fatalf("output: %s", out)
	}
	read := 0
	ctx := context.Background()
	for p := range int32(2) {
		st, err := b.Partitions(ctx, "js-interop", p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := b.Fetch(ctx, broker.FetchRequest{Topic: "js-interop", Partition: p, Offset: st[0].LogStart, MaxRecords: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			if want := "v" + strings.TrimPrefix(string(r.Key), "k"); string(r.Value) != want {
				t.Errorf("record %s=%s", r.Key, r.Value)
			}
		}
		read += len(res.Records)
	}
	// One record was deleted from the front of the busier partition.
	if read != 99 {
		t.Fatalf("read %d records back, want 99", read)
	}
}

// TestSpark: Spark Structured Streaming's Kafka source and sink
// (pyspark with spark-sql-kafka-0-10) read a Streambed topic in batch
// (startingOffsets/endingOffsets) and as a stream while records are
// produced, and write back into Streambed (interop/spark).
func TestSpark(t *testing.T) {
	python := requireClient(t, "STREAMBED_TEST_SPARK_PYTHON")
	jars := requireClient(t, "STREAMBED_TEST_SPARK_JARS")
	addr, b := startNode(t)
	ctx := context.Background()
	for _, name := range []string{"spark-in", "spark-out"} {
		if _, err := b.CreateTopic(ctx, name, 3, offsets.DefaultTopicConfig()); err != nil {
			t.Fatal(err)
		}
	}
	var recs []broker.ProduceRecord
	for i := range 100 {
		recs = append(recs, broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}, Partition: broker.NoPartition})
	}
	if _, err := b.Produce(ctx, "spark-in", recs, broker.ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", python, filepath.Join("spark", "interop_spark.py"), addr, "spark-in", "spark-out", jars)
	if !strings.Contains(out, "spark interop: OK") {
		t.Fatalf("output: %s", out)
	}
}

// TestKafkaStreams: a Kafka Streams word count (a repartition topic, a
// state store with a changelog on a compacted topic) counts exactly, is
// stopped, and restarted after more input restores its store from the
// changelog and counts on exactly (interop/java WordCount).
func TestKafkaStreams(t *testing.T) {
	cp := requireClient(t, "STREAMBED_TEST_JAVA_CLASSPATH")
	addr, b := startNode(t)
	ctx := context.Background()
	for _, name := range []string{"wc-in", "wc-out"} {
		if _, err := b.CreateTopic(ctx, name, 3, offsets.DefaultTopicConfig()); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	produce := func(lines ...string) {
		t.Helper()
		var recs []broker.ProduceRecord
		for i, l := range lines {
			recs = append(recs, broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp, Key: fmt.Appendf(nil, "line-%d", i), Value: []byte(l)}, Partition: broker.NoPartition})
			for _, w := range strings.Fields(l) {
				counts[w]++
			}
		}
		if _, err := b.Produce(ctx, "wc-in", recs, broker.ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	wordCount := func() {
		t.Helper()
		args := []string{"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, "dev.streambed.interop.WordCount", addr, "wc-in", "wc-out", "wordcount"}
		for w, n := range counts {
			args = append(args, fmt.Sprintf("%s=%d", w, n))
		}
		if out := run(t, "", "java", args...); !strings.Contains(out, "word count: OK") {
			t.Fatalf("output: %s", out)
		}
	}
	produce("the quick brown fox", "jumps over the lazy dog", "the end")
	wordCount()
	produce("the fox again", "a dog again", "quick quick")
	wordCount()
}
