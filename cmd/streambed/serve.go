package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/console"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/kafkaapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := backendFlags(fs)
	addr := fs.String("addr", envDefault("STREAMBED_ADDR", "127.0.0.1:8080"), "HTTP listen address (env STREAMBED_ADDR; empty: no HTTP, a Kafka-only node)")
	compactEvery := fs.Duration("compact-interval", time.Minute, "run the compactor this often (0: never)")
	compactBudget := fs.Duration("compact-budget", 30*time.Second, "time budget of one compactor run")
	compactMemoryMB := fs.Int64("compact-memory-mb", 256, "memory for key compaction's key map, in MiB")
	compression := fs.String("compression", envDefault("STREAMBED_COMPRESSION", "gzip"), "batch compression: none, gzip, snappy, lz4 or zstd (gzip: every Kafka client reads it without plugins)")
	logFormat := fs.String("log-format", envDefault("STREAMBED_LOG_FORMAT", "text"), "log format: text or json")
	logLevel := fs.String("log-level", envDefault("STREAMBED_LOG_LEVEL", "info"), "log level: debug, info, warn or error")
	noUI := fs.Bool("no-ui", false, "do not serve the web console at /ui/")
	authFile := fs.String("auth", os.Getenv("STREAMBED_AUTH"), "authorization policy file (JSON: principals, grants, hashed tokens, JWT); env STREAMBED_AUTH. Without it every caller may do anything")
	insecure := fs.Bool("insecure", false, "allow listening beyond loopback without --auth")
	var cors multiFlag
	fs.Var(&cors, "cors-origin", "allow browser calls from this origin, e.g. where the console is deployed as static files (repeatable; * for any)")
	drainTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown waits for requests in flight")
	requestTimeout := fs.Duration("request-timeout", httpapi.DefaultRequestTimeout, "server-side deadline of a request waiting on storage (504 after it; long polls add their wait)")
	maxStreams := fs.Int("max-streams", 1000, "SSE streams this server keeps open at most (429 beyond; each principal also has the policy's limit, default 100)")
	maxInflight := fs.String("max-inflight-bytes", "128MiB", "request body bytes this server holds at once (a request that does not fit waits up to 2 s, then 429)")
	minBodyRate := fs.String("min-body-rate", "16KiB", "slowest a request body may arrive, per second after 5 s (408 below it)")
	kafkaAddr := fs.String("kafka-addr", os.Getenv("STREAMBED_KAFKA_ADDR"), "also serve the Kafka protocol on this address, e.g. 127.0.0.1:9092 (env STREAMBED_KAFKA_ADDR; empty: no Kafka listener)")
	kafkaAdvertised := fs.String("kafka-advertised-addr", os.Getenv("STREAMBED_KAFKA_ADVERTISED_ADDR"), "host:port Kafka clients are told to connect to (default: --kafka-addr); nodes behind one load balancer all advertise its address; host 'auto' is this machine's first non-loopback IPv4 address (a container's own)")
	kafkaNodeID := fs.Int("kafka-node-id", -1, "this node's Kafka node id (default: derived from the advertised address)")
	kafkaAutoCreate := fs.Bool("kafka-auto-create-topics", false, "create topics a Kafka client's Metadata request names (Kafka's auto.create.topics.enable)")
	kafkaTLSCert := fs.String("kafka-tls-cert", "", "serve the Kafka listener over TLS with this certificate (PEM; with --kafka-tls-key)")
	kafkaTLSKey := fs.String("kafka-tls-key", "", "the --kafka-tls-cert's private key (PEM)")
	groupCommit := fs.Bool("group-commit", true, "write concurrent produce requests as one object and one commit (false: each request its own)")
	flushBytes := fs.String("flush-max-bytes", "8MiB", "largest object one group-commit flush writes")
	flushDelay := fs.Duration("flush-delay", 20*time.Millisecond, "longest a flush waits for clients the previous flush answered (it waits at most a quarter of that flush's time; a lone request never waits)")
	memLimit := fs.String("memory-limit", "", "soft memory limit of the process (GOMEMLIMIT; default: 4x --max-inflight-bytes + 256 MiB), so memory a burst used is given back")
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
	inflightBytes, err := parseBytes(*maxInflight)
	if err != nil {
		return fmt.Errorf("--max-inflight-bytes: %w", err)
	}
	bodyRate, err := parseBytes(*minBodyRate)
	if err != nil {
		return fmt.Errorf("--min-body-rate: %w", err)
	}
	if *memLimit != "" || os.Getenv("GOMEMLIMIT") == "" {
		limit := 4*inflightBytes + 256<<20
		if *memLimit != "" {
			if limit, err = parseBytes(*memLimit); err != nil {
				return fmt.Errorf("--memory-limit: %w", err)
			}
		}
		debug.SetMemoryLimit(int64(min(limit, math.MaxInt64)))
	}
	comp, err := segments.ParseCompression(*compression)
	if err != nil {
		return fmt.Errorf("--compression: %w", err)
	}
	// Flags and the policy are checked before storage is touched: a
	// refused start leaves nothing behind.
	var authz *auth.Authorizer
	if *authFile != "" {
		pol, err := auth.LoadPolicy(*authFile)
		if err != nil {
			return err
		}
		if authz, err = auth.New(ctx, pol); err != nil {
			return err
		}
		log.Info("authentication on", "policy", *authFile, "principals", len(pol.Principals), "tokens", len(pol.Tokens), "jwt", pol.JWT != nil)
		go watchPolicy(ctx, authz, *authFile, 5*time.Second, log)
	} else {
		// A container task has no policy file: the policy comes from its
		// environment or an SSM parameter, as the functions' does.
		if authz, err = backend.LoadAuth(ctx, *env); err != nil {
			return fmt.Errorf("authorization policy: %w", err)
		}
		if authz != nil {
			log.Info("authentication on", "policy", "from STREAMBED_AUTH_POLICY or STREAMBED_AUTH_POLICY_SSM")
		}
	}
	for _, a := range []string{*addr, *kafkaAddr} {
		if a == "" || authz != nil || isLoopback(a) {
			continue
		}
		if !*insecure {
			return fmt.Errorf("refusing to listen on %s without --auth: anyone who can reach it could read, write and delete every topic (give --auth POLICY or STREAMBED_AUTH_POLICY(_SSM), or --insecure if something else guards the port)", a)
		}
		log.Warn("listening beyond loopback WITHOUT authentication (--insecure)", "addr", a)
	}
	if *addr == "" && *kafkaAddr == "" {
		return fmt.Errorf("nothing to serve: give --addr (HTTP), --kafka-addr (Kafka), or both")
	}
	certPEM, keyPEM := os.Getenv("STREAMBED_KAFKA_TLS_CERT_PEM"), os.Getenv("STREAMBED_KAFKA_TLS_KEY_PEM")
	if (*kafkaTLSCert == "" && certPEM == "") != (*kafkaTLSKey == "" && keyPEM == "") {
		return fmt.Errorf("--kafka-tls-cert and --kafka-tls-key (or STREAMBED_KAFKA_TLS_CERT_PEM and STREAMBED_KAFKA_TLS_KEY_PEM) go together")
	}
	advertised, err := resolveAdvertised(*kafkaAdvertised)
	if err != nil {
		return err
	}
	env.Logger = log
	be, err := backend.Open(ctx, *env)
	if err != nil {
		return err
	}
	defer be.Close()

	store := offsets.New(be.Table, offsets.WithLogger(log))
	// The embedded store is held by this process alone: long polls need not
	// re-read heads for other writers.
	fb, err := parseBytes(*flushBytes)
	if err != nil || fb < 1 {
		return fmt.Errorf("--flush-max-bytes %q: want a size such as 8MiB", *flushBytes)
	}
	flush := broker.FlushConfig{Off: !*groupCommit, MaxBytes: int(fb), Delay: *flushDelay}
	if *flushDelay == 0 {
		flush.Delay = -1 // never wait
	}
	b := broker.New(store, be.Bucket, broker.Config{Compression: &comp, Logger: log, SoleWriter: be.Metadata == "bolt", Flush: flush})
	comp2 := compactor.New(store, be.Bucket, compactor.Config{Budget: *compactBudget, KeyCompactMemory: *compactMemoryMB << 20, Logger: log})
	opts := httpapi.Options{Auth: authz, Logger: log, Backends: api.Backend{Objects: be.Objects, Metadata: be.Metadata}, Compactor: comp2, CORSOrigins: cors, RequestTimeout: *requestTimeout, MaxStreams: *maxStreams,
		MaxInflightBytes: int64(min(inflightBytes, math.MaxInt64)), MinBodyRate: int64(min(bodyRate, math.MaxInt64))}
	if !*noUI {
		opts.Console = console.Handler("/ui/")
	}
	srv := httpapi.New(b, opts)
	stopCompactor := runCompactorTicker(ctx, comp2, *compactEvery, log)
	defer stopCompactor()
	go returnMemory(ctx, 30*time.Second)

	errc := make(chan error, 1)
	var hs *http.Server
	if *addr != "" {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		hs = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		go func() { errc <- hs.Serve(httpapi.ProblemListener(ln)) }()
		attrs := []any{"url", "http://" + displayAddr(ln.Addr()), "objects", be.Objects, "metadata", be.Metadata}
		if be.Objects == "fs" || be.Metadata == "bolt" {
			attrs = append(attrs, "data", env.DataDir) // only the embedded backends live there
		}
		log.Info("streambed listening", attrs...)
		fmt.Fprintf(stdout, "streambed %s listening on http://%s\n", version, displayAddr(ln.Addr()))
		if !*noUI {
			fmt.Fprintf(stdout, "web console: http://%s/ui/\n", displayAddr(ln.Addr()))
		}
	}

	var kafkaDone chan error
	if *kafkaAddr != "" {
		kcfg := kafkaapi.Config{Advertised: advertised, NodeID: int32(*kafkaNodeID), Auth: authz, AutoCreateTopics: *kafkaAutoCreate, Logger: log}
		switch {
		case *kafkaTLSCert != "":
			cert, err := tls.LoadX509KeyPair(*kafkaTLSCert, *kafkaTLSKey)
			if err != nil {
				return fmt.Errorf("--kafka-tls-cert: %w", err)
			}
			kcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		case certPEM != "":
			// A container gets its certificate from a secret, as PEM in
			// its environment.
			cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
			if err != nil {
				return fmt.Errorf("STREAMBED_KAFKA_TLS_CERT_PEM: %w", err)
			}
			kcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		kln, err := net.Listen("tcp", *kafkaAddr)
		if err != nil {
			return err
		}
		ks := kafkaapi.New(b, kcfg)
		kafkaDone = make(chan error, 1)
		go func() { kafkaDone <- ks.Serve(ctx, kln) }()
		scheme := "kafka"
		if kcfg.TLS != nil {
			scheme = "kafka+tls"
		}
		log.Info("kafka listening", "addr", displayAddr(kln.Addr()), "advertised", *kafkaAdvertised, "sasl", authz != nil, "tls", kcfg.TLS != nil)
		fmt.Fprintf(stdout, "kafka protocol: %s://%s\n", scheme, displayAddr(kln.Addr()))
	}

	select {
	case err := <-errc:
		return err
	case err := <-kafkaDone:
		kafkaDone = nil
		if err != nil {
			return fmt.Errorf("kafka listener: %w", err)
		}
	case <-ctx.Done():
	}
	log.Info("shutting down: ending streams, finishing requests in flight")
	stopCompactor()
	b.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *drainTimeout)
	defer cancel()
	if hs != nil {
		if err := hs.Shutdown(shutdownCtx); err != nil {
			log.Warn("shutdown timed out; closing connections", "err", err)
			_ = hs.Close()
		}
	}
	if kafkaDone != nil {
		<-kafkaDone
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

// runCompactorTicker runs the compactor every interval until ctx ends; the
// returned function stops it and waits for a run in progress.
func runCompactorTicker(ctx context.Context, c *compactor.Compactor, every time.Duration, log *slog.Logger) func() {
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := c.Run(ctx); err != nil && ctx.Err() == nil {
					log.Warn("compaction run failed", "err", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// isLoopback reports whether a listen address stays on this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// watchPolicy reloads the policy file when it changes (checked every
// interval): removed tokens, revoked grants and new limits take effect
// without a restart, open streams included. A policy that does not parse
// is logged and the current one kept.
func watchPolicy(ctx context.Context, a *auth.Authorizer, path string, every time.Duration, log *slog.Logger) {
	stat := func() (time.Time, int64) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mod, size := stat()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, sz := stat()
		if sz < 0 || (m.Equal(mod) && sz == size) {
			continue
		}
		mod, size = m, sz
		pol, err := auth.LoadPolicy(path)
		if err == nil {
			err = a.Reload(ctx, pol)
		}
		if err != nil {
			log.Error("the changed policy file was not loaded; the previous policy stays", "policy", path, "err", err)
			continue
		}
		log.Info("policy reloaded", "policy", path, "principals", len(pol.Principals), "tokens", len(pol.Tokens))
	}
}

// returnMemory gives memory a burst of requests used back to the system
// once it sits idle (the runtime would keep it for a while otherwise).
func returnMemory(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapIdle-ms.HeapReleased > 64<<20 {
			debug.FreeOSMemory()
		}
	}
}

// resolveAdvertised turns an advertised address whose host is "auto" into
// this machine's first non-loopback IPv4 address: a task of a container
// service (each with its own address) advertises itself that way.
func resolveAdvertised(a string) (string, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host != "auto" {
		return a, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("--kafka-advertised-addr auto: %w", err)
	}
	for _, ad := range addrs {
		if ip, ok := ad.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return net.JoinHostPort(ip.IP.String(), port), nil
		}
	}
	return "", fmt.Errorf("--kafka-advertised-addr auto: this machine has no non-loopback IPv4 address")
}
