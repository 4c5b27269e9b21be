// Command peers measures Streambed's produce path beside its peers, in the
// same run, on the same machine and the same records: NATS JetStream (file
// store, fsync on every write and its default periodic fsync), the raw
// disk (append + fdatasync), and, on an S3 + DynamoDB stack, raw PUTs at
// the same concurrency. It is its own module so that the NATS server and
// client never become dependencies of Streambed itself.
//
//	cd bench/peers && go run . -duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// flushesInFlight tunes Streambed's group commit (0: the default).
var (
	flushesInFlight int
	flushDelay      time.Duration
)

// row is one measurement.
type row struct {
	System      string
	Clients     int
	Records     int // per request
	RecordsPerS float64
	MBPerS      float64
	P50, P99    float64 // ms; 0 when not measured
	Note        string
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 5*time.Second, "how long each measurement runs")
	recordBytes := fs.Int("record-bytes", 1024, "record size")
	small := fs.String("small-clients", "1,16,64", "client counts for 1-record requests")
	large := fs.String("large-clients", "1,4,8", "client counts for 1000-record requests")
	systems := fs.String("systems", "streambed,jetstream-always,jetstream-default,disk", "what to measure")
	delay := fs.Duration("flush-delay", 0, "Streambed's group commit: how long a flush waits for more requests (0: its default)")
	inflight := fs.Int("flushes-in-flight", 0, "Streambed's group commit: flushes uploading or committing at once (0: its default)")
	s3 := fs.Bool("s3", false, "measure Streambed on MinIO + moto (endpoints from bin/localstack.env's STREAMBED_TEST_* variables) beside raw PUTs, instead of the embedded store")
	kafka := fs.Bool("kafka", false, "measure through the Kafka protocol instead: franz-go and kafka-producer-perf-test on Streambed and (with -kafka-libs) Apache Kafka")
	kafkaLibs := fs.String("kafka-libs", "", "with -kafka: a directory of Apache Kafka's jars (server and tools; make bench-kafka fetches them)")
	kafkaRecords := fs.Int("kafka-records", 200_000, "with -kafka: records per measurement")
	kafkaRuns := fs.Int("runs", 3, "with -kafka: measurements per target and tool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kafka {
		rows, err := runKafka(ctx, kafkaConfig{libs: *kafkaLibs, records: *kafkaRecords, recordBytes: *recordBytes, partitions: 4,
			linger: 5 * time.Millisecond, runs: *kafkaRuns}, func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) })
		if err != nil {
			return err
		}
		return writeKafkaTable(stdout, rows)
	}
	flushesInFlight, flushDelay = *inflight, *delay
	smallC, err := ints(*small)
	if err != nil {
		return err
	}
	largeC, err := ints(*large)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*systems, ",") {
		want[strings.TrimSpace(s)] = true
	}
	var rows []row
	add := func(r []row, err error) error {
		if err != nil {
			return err
		}
		for _, x := range r {
			fmt.Fprintf(stderr, "%-18s %3d clients × %4d records: %9.0f records/s %7.1f MB/s  p50 %6.1f ms  p99 %6.1f ms %s\n", x.System, x.Clients, x.Records, x.RecordsPerS, x.MBPerS, x.P50, x.P99, x.Note)
		}
		rows = append(rows, r...)
		return nil
	}
	if *s3 {
		if err := add(streambedS3(ctx, largeC, *recordBytes, *duration)); err != nil {
			return err
		}
		return writeTable(stdout, rows)
	}
	for _, sc := range []struct {
		clients []int
		records int
	}{{smallC, 1}, {largeC, 1000}} {
		for _, c := range sc.clients {
			if want["streambed"] {
				if err := add(streambedEmbedded(ctx, c, sc.records, *recordBytes, *duration)); err != nil {
					return err
				}
			}
			for _, always := range []bool{true, false} {
				name := "jetstream-default"
				if always {
					name = "jetstream-always"
				}
				if want[name] {
					if err := add(runJetStream(ctx, always, c, sc.records, *recordBytes, *duration)); err != nil {
						return err
					}
				}
			}
		}
		if want["disk"] {
			if err := add(disk(sc.records**recordBytes, *duration)); err != nil {
				return err
			}
		}
	}
	return writeTable(stdout, rows)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func writeTable(w io.Writer, rows []row) error {
	fmt.Fprintln(w, "| system | clients | records per request | records/s | MB/s | p50 ms | p99 ms | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.1f | %s | %s | %s |\n", r.System, r.Clients, r.Records, r.RecordsPerS, r.MBPerS, measured(r.P50), measured(r.P99), r.Note); err != nil {
			return err
		}
	}
	return nil
}

func writeKafkaTable(w io.Writer, rows []kafkaRow) error {
	fmt.Fprintln(w, "| target | tool | produce records/s | produce MB/s | p50 ms | p99 ms | consume MB/s | objects per GB | metadata writes per GB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %.1f | %.1f | %s | %s | %s |\n", r.Target, r.Tool, r.RecordsPerS, r.MBPerS, r.P50, r.P99,
			measured(r.ConsumeMBPerS), measured(r.ObjectsPerGB), measured(r.MetadataWritesGB)); err != nil {
			return err
		}
	}
	return nil
}

// measured prints a figure, or a dash where it was not measured (0).
func measured(v float64) string {
	if v == 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
