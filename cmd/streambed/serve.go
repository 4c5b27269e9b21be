package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := backend.FromEnv()
	addr := fs.String("addr", envDefault("STREAMBED_ADDR", "127.0.0.1:8080"), "listen address (env STREAMBED_ADDR)")
	fs.StringVar(&env.DataDir, "data", env.DataDir, "data directory of the embedded default (env STREAMBED_DATA)")
	fs.StringVar(&env.Bucket, "s3-bucket", env.Bucket, "store objects in this S3 bucket instead of the data directory (env STREAMBED_S3_BUCKET)")
	fs.StringVar(&env.S3Endpoint, "s3-endpoint", env.S3Endpoint, "S3 endpoint for MinIO/moto/LocalStack (env STREAMBED_S3_ENDPOINT)")
	fs.BoolVar(&env.S3PathStyle, "s3-path-style", env.S3PathStyle, "path-style S3 addressing, needed by local stores (env STREAMBED_S3_PATH_STYLE=true)")
	fs.StringVar(&env.Table, "dynamodb-table", env.Table, "keep metadata in this DynamoDB table instead of the data directory (env STREAMBED_DYNAMODB_TABLE)")
	fs.StringVar(&env.DynamoEndpoint, "dynamodb-endpoint", env.DynamoEndpoint, "DynamoDB endpoint for moto/LocalStack (env STREAMBED_DYNAMODB_ENDPOINT)")
	fs.BoolVar(&env.CreateTable, "create-table", env.CreateTable, "create the DynamoDB table if it does not exist (env STREAMBED_CREATE_TABLE=true)")
	fs.StringVar(&env.Region, "region", env.Region, "AWS region (env AWS_REGION)")
	compression := fs.String("compression", envDefault("STREAMBED_COMPRESSION", "zstd"), "batch compression: none, gzip, snappy, lz4 or zstd")
	logFormat := fs.String("log-format", envDefault("STREAMBED_LOG_FORMAT", "text"), "log format: text or json")
	logLevel := fs.String("log-level", envDefault("STREAMBED_LOG_LEVEL", "info"), "log level: debug, info, warn or error")
	drainTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown waits for requests in flight")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	comp, err := segments.ParseCompression(*compression)
	if err != nil {
		return fmt.Errorf("--compression: %w", err)
	}
	env.Logger = log
	be, err := backend.Open(ctx, env)
	if err != nil {
		return err
	}
	defer be.Close()

	store := offsets.New(be.Table, offsets.WithLogger(log))
	b := broker.New(store, be.Bucket, broker.Config{Compression: &comp, Logger: log})
	srv := httpapi.New(b, httpapi.Options{Logger: log, Backends: api.Backend{Objects: be.Objects, Metadata: be.Metadata}})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("streambed listening", "url", "http://"+displayAddr(ln.Addr()), "objects", be.Objects, "metadata", be.Metadata, "data", env.DataDir)
	fmt.Fprintf(stdout, "streambed %s listening on http://%s\n", version, displayAddr(ln.Addr()))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: ending streams, finishing requests in flight")
	b.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *drainTimeout)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown timed out; closing connections", "err", err)
		_ = hs.Close()
	}
	log.Info("stopped")
	return nil
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
		return a.String()
	}
	return a.String()
}
