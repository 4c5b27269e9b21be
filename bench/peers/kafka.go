package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/internal/bench"
	"github.com/streambed/streambed/pkg/broker"
)

// kafkaConfig is the Kafka-protocol comparison's settings.
type kafkaConfig struct {
	libs        string // Apache Kafka's jars (server and tools); "" measures Streambed only
	records     int
	recordBytes int
	partitions  int32
	linger      time.Duration
	runs        int
}

// kafkaRow is one measurement through the Kafka protocol.
type kafkaRow struct {
	Target, Tool     string
	RecordsPerS      float64
	MBPerS           float64
	P50, P99         float64 // ms
	ConsumeMBPerS    float64 // 0: not measured
	ObjectsPerGB     float64 // Streambed only
	MetadataWritesGB float64
}

// target is a broker to measure: its address and the topic config that
// sets its durability.
type target struct {
	name    string
	addr    string
	configs map[string]*string
	// counts returns object PUTs and metadata writes so far (nil: not
	// Streambed).
	counts func() (int64, int64)
}

// runKafka measures produce and consume through the Kafka protocol with
// franz-go and with the Java client's kafka-producer-perf-test, on
// Streambed's embedded default and on Apache Kafka (KRaft, one node),
// with Kafka's defaults and with flush.messages=1.
func runKafka(ctx context.Context, cfg kafkaConfig, logf func(string, ...any)) ([]kafkaRow, error) {
	dir, err := os.MkdirTemp("", "peers-kafka-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	be, err := backend.Open(ctx, backend.Config{DataDir: filepath.Join(dir, "streambed")})
	if err != nil {
		return nil, err
	}
	defer be.Close()
	srv, err := bench.Serve(be, broker.Config{})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	targets := []target{{name: "streambed (embedded)", addr: srv.Kafka, counts: func() (int64, int64) {
		return srv.Bucket.Counts().Put, srv.Table.Counts().Write
	}}}
	if cfg.libs != "" {
		addr, stop, err := startKafka(ctx, cfg.libs, filepath.Join(dir, "kafka"))
		if err != nil {
			return nil, err
		}
		defer stop()
		one := "1"
		targets = append(targets,
			target{name: "kafka (defaults)", addr: addr},
			target{name: "kafka (flush.messages=1)", addr: addr, configs: map[string]*string{"flush.messages": &one}})
	}
	var rows []kafkaRow
	for run := range cfg.runs {
		for i, tg := range targets {
			topic := func(what string) (string, error) {
				name := fmt.Sprintf("bench-%d-%d-%s", run, i, what)
				adm, err := kgo.NewClient(kgo.SeedBrokers(tg.addr))
				if err != nil {
					return "", err
				}
				defer adm.Close()
				res, err := kadm.NewClient(adm).CreateTopic(ctx, cfg.partitions, 1, tg.configs, name)
				if err == nil {
					err = res.Err
				}
				return name, err
			}
			if run == 0 {
				// Warm both up (JIT, connections, file creation) before the
				// first measurement.
				t, err := topic("warm")
				if err != nil {
					return nil, err
				}
				if _, err := franzProduce(ctx, tg.addr, t, cfg.records/10, cfg.recordBytes, cfg.linger); err != nil {
					return nil, err
				}
			}
			t, err := topic("franz")
			if err != nil {
				return nil, err
			}
			var puts0, writes0 int64
			if tg.counts != nil {
				puts0, writes0 = tg.counts()
			}
			r, err := franzProduce(ctx, tg.addr, t, cfg.records, cfg.recordBytes, cfg.linger)
			if err != nil {
				return nil, fmt.Errorf("%s: franz-go produce: %w", tg.name, err)
			}
			r.Target, r.Tool = tg.name, "franz-go"
			if tg.counts != nil {
				puts, writes := tg.counts()
				gb := float64(cfg.records) * float64(cfg.recordBytes) / 1e9
				r.ObjectsPerGB, r.MetadataWritesGB = float64(puts-puts0)/gb, float64(writes-writes0)/gb
			}
			if r.ConsumeMBPerS, err = franzConsume(ctx, tg.addr, t, cfg.partitions, cfg.records, cfg.recordBytes); err != nil {
				return nil, fmt.Errorf("%s: franz-go consume: %w", tg.name, err)
			}
			logf("%-26s %-22s %9.0f records/s %6.1f MB/s p50 %7.1f ms p99 %7.1f ms consume %6.1f MB/s", r.Target, r.Tool, r.RecordsPerS, r.MBPerS, r.P50, r.P99, r.ConsumeMBPerS)
			rows = append(rows, r)
			if cfg.libs == "" {
				continue
			}
			t, err = topic("perf")
			if err != nil {
				return nil, err
			}
			pr, err := producerPerfTest(ctx, cfg, tg.addr, t)
			if err != nil {
				return nil, fmt.Errorf("%s: kafka-producer-perf-test: %w", tg.name, err)
			}
			pr.Target, pr.Tool = tg.name, "kafka-producer-perf-test"
			// The consumer tool reads the same records back as a group
			// member (the classic protocol), from the start.
			if pr.ConsumeMBPerS, err = consumerPerfTest(ctx, cfg, tg.addr, t, fmt.Sprintf("perf-%d-%d", run, i)); err != nil {
				return nil, fmt.Errorf("%s: kafka-consumer-perf-test: %w", tg.name, err)
			}
			logf("%-26s %-22s %9.0f records/s %6.1f MB/s p50 %7.1f ms p99 %7.1f ms consume %6.1f MB/s", pr.Target, pr.Tool, pr.RecordsPerS, pr.MBPerS, pr.P50, pr.P99, pr.ConsumeMBPerS)
			rows = append(rows, pr)
		}
	}
	return rows, nil
}

// franzProduce sends n records of size bytes (random, so incompressible,
// and sent uncompressed as the Java tool does) with acks=all and an
// idempotent producer; latency is from Produce to the acknowledgement.
func franzProduce(ctx context.Context, addr, topic string, n, size int, linger time.Duration) (kafkaRow, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(linger),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(20_000))
	if err != nil {
		return kafkaRow{}, err
	}
	defer cl.Close()
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	lat := make([]float64, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		off := (i * 4099) % (len(payload) - size)
		t0 := time.Now()
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: payload[off : off+size]}, func(_ *kgo.Record, err error) {
			lat[i] = float64(time.Since(t0).Microseconds()) / 1000
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return kafkaRow{}, firstErr
	}
	slices.Sort(lat)
	return kafkaRow{RecordsPerS: float64(n) / elapsed.Seconds(), MBPerS: float64(n*size) / elapsed.Seconds() / 1e6,
		P50: lat[n/2], P99: lat[n*99/100]}, nil
}

// franzConsume reads a topic's n records from the start (assigned
// partitions, no group) and returns MB/s.
func franzConsume(ctx context.Context, addr, topic string, partitions int32, n, size int) (float64, error) {
	parts := map[int32]kgo.Offset{}
	for p := range partitions {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	read := 0
	for read < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return 0, err
		}
		read += fs.NumRecords()
	}
	return float64(read*size) / time.Since(start).Seconds() / 1e6, nil
}

// perfLine is kafka-producer-perf-test's summary line.
var perfLine = regexp.MustCompile(`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th`)

// producerPerfTest runs the Java client's producer benchmark (the class
// behind kafka-producer-perf-test.sh) with acks=all and the same linger.
func producerPerfTest(ctx context.Context, cfg kafkaConfig, addr, topic string) (kafkaRow, error) {
	cmd := exec.CommandContext(ctx, "java", "-Xmx512m", "-cp", filepath.Join(cfg.libs, "*"), "org.apache.kafka.tools.ProducerPerformance",
		"--topic", topic, "--num-records", strconv.Itoa(cfg.records), "--record-size", strconv.Itoa(cfg.recordBytes), "--throughput", "-1",
		"--producer-props", "bootstrap.servers="+addr, "acks=all", fmt.Sprintf("linger.ms=%d", cfg.linger.Milliseconds()))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return kafkaRow{}, fmt.Errorf("%v: %s", err, tailOf(string(out), 2000))
	}
	m := perfLine.FindAllStringSubmatch(string(out), -1)
	if len(m) == 0 {
		return kafkaRow{}, fmt.Errorf("no summary in its output: %s", tailOf(string(out), 2000))
	}
	last := m[len(m)-1]
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	return kafkaRow{RecordsPerS: f(last[2]), MBPerS: f(last[3]) * 1.048576, P50: f(last[4]), P99: f(last[5])}, nil
}

// consumerPerfTest runs the Java client's consumer benchmark (the class
// behind kafka-consumer-perf-test.sh) over a topic's records; it returns
// MB/s (10^6 bytes) as the tool measures it (from its first fetch).
func consumerPerfTest(ctx context.Context, cfg kafkaConfig, addr, topic, group string) (float64, error) {
	cmd := exec.CommandContext(ctx, "java", "-Xmx512m", "-cp", filepath.Join(cfg.libs, "*"), "org.apache.kafka.tools.ConsumerPerformance",
		"--bootstrap-server", addr, "--topic", topic, "--num-records", strconv.Itoa(cfg.records), "--group", group, "--timeout", "60000", "--hide-header")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, tailOf(string(out), 2000))
	}
	// start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) >= 6 {
			if mbs, err := strconv.ParseFloat(strings.TrimSpace(f[3]), 64); err == nil {
				return mbs * 1.048576, nil
			}
		}
	}
	return 0, fmt.Errorf("no summary in its output: %s", tailOf(string(out), 2000))
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startKafka formats and starts a single-node KRaft broker (broker and
// controller in one JVM) from the jars in libs, with Kafka's defaults
// except what one node needs; it returns its address and a stop function.
func startKafka(ctx context.Context, libs, dir string) (string, func(), error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", nil, err
	}
	data := filepath.Join(dir, "data")
	props := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", ports[1]),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", ports[0], ports[1]),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", ports[0]),
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + data,
		"offsets.topic.replication.factor=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"",
	}, "\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(conf, []byte(props), 0o644); err != nil {
		return "", nil, err
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	cp := filepath.Join(libs, "*")
	if out, err := exec.CommandContext(ctx, "java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t",
		base64.RawURLEncoding.EncodeToString(id), "-c", conf).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("formatting Kafka's storage: %v: %s", err, tailOf(string(out), 2000))
	}
	logFile, err := os.Create(filepath.Join(dir, "kafka.log"))
	if err != nil {
		return "", nil, err
	}
	// Kafka's own start script gives the broker a 1 GiB heap.
	cmd := exec.Command("java", "-Xms1g", "-Xmx1g", "-cp", cp, "kafka.Kafka", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
		logFile.Close()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	deadline := time.Now().Add(90 * time.Second)
	for {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = kadm.NewClient(cl).BrokerMetadata(pctx)
			cancel()
			cl.Close()
			if err == nil {
				return addr, stop, nil
			}
		}
		select {
		case err := <-done:
			done <- err
			stop()
			return "", nil, fmt.Errorf("kafka exited at start (%v); see %s", err, logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("kafka did not start within 90 s")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
