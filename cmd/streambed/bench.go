package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/internal/bench"
	"github.com/streambed/streambed/pkg/broker"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "bench [flags]\n\nDrives an endpoint with producers and a consumer group and reports latency,\nthroughput, storage requests per GB and cost per GB. Without --url it starts the\nbroker in this process (embedded default in a temporary directory, or the\nstorage the backend flags name) so it can count every storage request, and\nwith --baseline it also measures that storage raw.", stderr)
	url := fs.String("url", "", "benchmark this running endpoint (storage requests and costs are then unknown)")
	producers := fs.Int("producers", 4, "concurrent producers")
	consumers := fs.Int("consumers", 2, "consumers in one group (0: produce only)")
	partitions := fs.Int("partitions", 8, "partitions of the benchmark topic")
	recordBytes := fs.Int("record-bytes", 1024, "record value size")
	batchBytes := fs.Int("batch-bytes", 1<<20, "producer batch size per partition")
	linger := fs.Duration("linger", 50*time.Millisecond, "producer linger")
	duration := fs.Duration("duration", 10*time.Second, "how long to produce")
	rate := fs.Int("rate", 0, "cap on records/s over all producers (0: unlimited, a throughput test; set it to measure latency)")
	baseline := fs.Bool("baseline", false, "also measure the raw storage with the same object size")
	prices := fs.String("prices", "", "price table (JSON like internal/bench/prices.json; default: the built-in one)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	requestRecords := fs.Int("request-records", 0, "instead of SDK producers, --producers plain HTTP clients each posting requests of this many records and waiting for each answer (the load of HTTP users and Kafka clients)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (broker and load together) to this file")
	cfgBE := backendFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return badArgs(fs, "unexpected argument %q", pos[0])
	}
	if *baseline && *url != "" {
		return badArgs(fs, "--baseline needs the storage: run without --url")
	}
	pr, err := bench.LoadPrices(*prices)
	if err != nil {
		return err
	}
	cfg := bench.Config{URL: *url, Producers: *producers, Consumers: *consumers, Partitions: int32(*partitions), RecordBytes: *recordBytes,
		BatchBytes: *batchBytes, Linger: *linger, Duration: *duration, Rate: *rate, Prices: pr, Log: stderr}
	var be *backend.Backend
	if *url == "" {
		explicit := os.Getenv("STREAMBED_DATA") != ""
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "data" })
		if !explicit { // never benchmark into ./data by accident
			dir, err := os.MkdirTemp("", "streambed-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfgBE.DataDir = dir
		}
		if be, err = backend.Open(ctx, *cfgBE); err != nil {
			return err
		}
		defer be.Close()
		srv, err := bench.Serve(be, broker.Config{})
		if err != nil {
			return err
		}
		defer srv.Close()
		cfg.URL, cfg.Bucket, cfg.Table = srv.URL, srv.Bucket, srv.Table
		fmt.Fprintf(stderr, "serving %s + %s in this process at %s\n", be.Objects, be.Metadata, cfg.URL)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *requestRecords > 0 {
		res, err := bench.RunRequests(ctx, bench.RequestsConfig{URL: cfg.URL, Partitions: cfg.Partitions, Clients: *producers, Records: *requestRecords,
			RecordBytes: *recordBytes, Duration: *duration, Bucket: cfg.Bucket, Table: cfg.Table})
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, res)
		}
		return res.WriteText(stdout)
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *baseline {
		fmt.Fprintln(stderr, "measuring the raw storage ...")
		size := int64(1 << 20)
		if res.PerGB != nil && res.PerGB.AverageObjectBytes > 0 {
			size = int64(res.PerGB.AverageObjectBytes)
		}
		bl, err := bench.RunBaseline(ctx, be.Bucket, be.Table, size, *producers, min(*duration, 5*time.Second))
		if err != nil {
			return err
		}
		res.CompareWith(bl)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	return res.WriteText(stdout)
}
