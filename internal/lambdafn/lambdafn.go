// Package lambdafn is what the Lambda mains share: configuration from the
// environment, the storage adapters (built once per sandbox, reused across
// invocations), the HTTP handler served through API Gateway HTTP API
// (payload v2) and Lambda Function URL events, with response streaming for
// Function URLs in RESPONSE_STREAM mode, and the scheduled compactor.
package lambdafn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/console"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// App is one function's wiring.
type App struct {
	Name      string
	Log       *slog.Logger
	Backend   *backend.Backend
	Store     *offsets.Store
	Broker    *broker.Broker
	Compactor *compactor.Compactor
	Auth      *auth.Authorizer // nil: no policy configured
	Out       io.Writer        // EMF metrics
	console   http.Handler     // see WithConsole
}

// New wires a function from the environment: STREAMBED_S3_BUCKET and
// STREAMBED_DYNAMODB_TABLE (plus the *_ENDPOINT variables for local
// stacks), STREAMBED_LOG_LEVEL, STREAMBED_COMPRESSION,
// STREAMBED_COMPACT_BUDGET (a duration), STREAMBED_COMPACT_MEMORY_MB (the
// key compaction map's budget), and the authorization policy
// from STREAMBED_AUTH_POLICY (the JSON document) or
// STREAMBED_AUTH_POLICY_SSM (the name of an SSM parameter holding it).
func New(ctx context.Context, name string) (*App, error) {
	level := slog.LevelInfo
	if v := os.Getenv("STREAMBED_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("STREAMBED_LOG_LEVEL %q: %w", v, err)
		}
	}
	// Lambda forwards stdout/stderr to CloudWatch Logs; JSON lines are queryable.
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("function", name)
	cfg := backend.FromEnv()
	if cfg.Bucket == "" || cfg.Table == "" {
		return nil, fmt.Errorf("STREAMBED_S3_BUCKET and STREAMBED_DYNAMODB_TABLE must be set")
	}
	cfg.Logger = log
	be, err := backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	comp := segments.DefaultCompression
	if v := os.Getenv("STREAMBED_COMPRESSION"); v != "" {
		if comp, err = segments.ParseCompression(v); err != nil {
			return nil, err
		}
	}
	budget := 50 * time.Second
	if v := os.Getenv("STREAMBED_COMPACT_BUDGET"); v != "" {
		if budget, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("STREAMBED_COMPACT_BUDGET %q: %w", v, err)
		}
	}
	var keyMemory int64
	if v := os.Getenv("STREAMBED_COMPACT_MEMORY_MB"); v != "" {
		mb, err := strconv.ParseInt(v, 10, 64)
		if err != nil || mb < 1 {
			return nil, fmt.Errorf("STREAMBED_COMPACT_MEMORY_MB %q: want a number of MiB, at least 1", v)
		}
		keyMemory = mb << 20
	}
	store := offsets.New(be.Table, offsets.WithLogger(log))
	a := &App{
		Name: name, Log: log, Backend: be, Store: store, Out: os.Stdout,
		Broker:    broker.New(store, be.Bucket, broker.Config{Compression: &comp, Logger: log}),
		Compactor: compactor.New(store, be.Bucket, compactor.Config{Budget: budget, KeyCompactMemory: keyMemory, Logger: log}),
	}
	if a.Auth, err = backend.LoadAuth(ctx, cfg); err != nil {
		return nil, err
	}
	if a.Auth == nil {
		log.Warn("no authorization policy (STREAMBED_AUTH_POLICY or STREAMBED_AUTH_POLICY_SSM): every caller the gateway lets through may do anything")
	}
	a.onSIGTERM()
	return a, nil
}

// Must is New for mains: a function that cannot wire itself fails its init.
func Must(name string) *App {
	a, err := New(context.Background(), name)
	if err != nil {
		slog.Error("init failed", "function", name, "err", err)
		os.Exit(1)
	}
	return a
}

// WithConsole makes Server also serve the web console at /ui/: the admin
// function's job on AWS. Its assets are public (their routes need no
// authorization); the API calls the console makes are authorized as any
// other (a bearer token, or SigV4 with credentials the user gives it).
func (a *App) WithConsole() *App {
	a.console = console.Handler("/ui/")
	return a
}

// Server returns the HTTP API limited to the given route classes.
func (a *App) Server(ops ...string) *httpapi.Server {
	return httpapi.New(a.Broker, httpapi.Options{
		Logger: a.Log, Ops: ops, Auth: a.Auth,
		Backends:  api.Backend{Objects: a.Backend.Objects, Metadata: a.Backend.Metadata},
		Compactor: a.Compactor, Console: a.console,
	})
}

// onSIGTERM: Lambda sends SIGTERM before it shuts a sandbox down (no
// invocation is running then). End streams, flush, exit.
func (a *App) onSIGTERM() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		<-ch
		a.Broker.Drain()
		a.Log.Info("SIGTERM: sandbox shutting down")
		_ = a.Backend.Close()
		if f, ok := a.Out.(interface{ Sync() error }); ok {
			_ = f.Sync()
		}
		os.Exit(0)
	}()
}

// invocationContext ends margin before the invocation's deadline, so work
// in flight (long polls, streams, compaction) stops in time to answer.
func invocationContext(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-margin))
	}
	return context.WithCancel(ctx)
}

func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
