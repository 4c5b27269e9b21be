package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/offsets"
)

// openStore opens storage directly (not through a server).
func openStore(ctx context.Context, cfg backend.Config) (*offsets.Store, *backend.Backend, error) {
	be, err := backend.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return offsets.New(be.Table), be, nil
}

// adminCall calls a running server's admin route and decodes the answer.
func adminCall(ctx context.Context, method, base, path string, out any) error {
	var opts []client.Option
	if tok := os.Getenv("STREAMBED_TOKEN"); tok != "" {
		opts = append(opts, client.WithBearerToken(tok))
	}
	c, err := client.New(base, opts...)
	if err != nil {
		return err
	}
	return c.Do(ctx, method, path, nil, out)
}

func runCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: streambed compact [flags]\n\nRuns one compaction pass: retention, key compaction, merges, GC and the\norphan sweep. Against a running server with --url (the embedded default\nis locked by the server that uses it), else directly on storage.")
		fs.PrintDefaults()
	}
	url := fs.String("url", os.Getenv("STREAMBED_URL"), "run the pass on this server (POST /v1/admin/compact)")
	budget := fs.Duration("budget", 50*time.Second, "time budget of the pass")
	memoryMB := fs.Int64("memory-mb", 256, "memory for key compaction's key map, in MiB (about 16,000 keys per MiB; more keys take more passes)")
	cfg := backendFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	var stats compactor.Stats
	if *url != "" {
		if err := adminCall(ctx, "POST", *url, "/v1/admin/compact", &stats); err != nil {
			return err
		}
	} else {
		store, be, err := openStore(ctx, *cfg)
		if err != nil {
			return err
		}
		defer be.Close()
		if stats, err = compactor.New(store, be.Bucket, compactor.Config{Budget: *budget, KeyCompactMemory: *memoryMB << 20}).Run(ctx); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(stats)
}

func runFsck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fsck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: streambed fsck [flags]\n\nChecks the storage invariants (dense offsets and tiled index; no entry\npointing at a missing object; no object outliving its last reference; log\nbounds never moving back) without changing anything. Exits 1 on violations.")
		fs.PrintDefaults()
	}
	url := fs.String("url", os.Getenv("STREAMBED_URL"), "check through this server (GET /v1/admin/fsck)")
	strict := fs.Bool("strict", false, "report every unreferenced object, whatever its age")
	footers := fs.Bool("footers", false, "also read every object's footer and check the index against it (a stat and two ranged reads per object)")
	previous := fs.String("previous", "", "an earlier --json report: log bounds must not have moved back since")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cfg := backendFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	opt := compactor.FsckOptions{Strict: *strict, Footers: *footers}
	if *previous != "" {
		data, err := os.ReadFile(*previous)
		if err != nil {
			return err
		}
		opt.Previous = &compactor.Report{}
		if err := json.Unmarshal(data, opt.Previous); err != nil {
			return fmt.Errorf("--previous %s: %w", *previous, err)
		}
	}
	var rep *compactor.Report
	if *url != "" {
		q := neturl.Values{}
		if *strict {
			q.Set("strict", "true")
		}
		if *footers {
			q.Set("footers", "true")
		}
		rep = &compactor.Report{}
		if err := adminCall(ctx, "GET", *url, "/v1/admin/fsck?"+q.Encode(), rep); err != nil {
			return err
		}
	} else {
		store, be, err := openStore(ctx, *cfg)
		if err != nil {
			return err
		}
		defer be.Close()
		if rep, err = compactor.Fsck(ctx, store, be.Bucket, opt); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%d topics, %d partitions, %d index entries, %d objects (%d bytes indexed)\n", rep.Topics, rep.Partitions, rep.Entries, rep.Objects, rep.Bytes)
		for _, v := range rep.Violations {
			where := v.Topic
			if v.Partition != nil {
				where += fmt.Sprintf("/%d", *v.Partition)
			}
			if v.Object != "" {
				where += " " + v.Object
			}
			fmt.Fprintf(stdout, "invariant %d: %s: %s\n", v.Invariant, strings.TrimSpace(where), v.Detail)
		}
		if rep.Clean() {
			fmt.Fprintln(stdout, "clean")
		}
	}
	if !rep.Clean() {
		return fmt.Errorf("%w: %d", compactor.ErrViolations, len(rep.Violations))
	}
	return nil
}
