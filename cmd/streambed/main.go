// Command streambed is Streambed's single binary: the local broker
// (`serve`) and the tools that talk to any Streambed endpoint.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	// Root certificates for when the system has none: the container image
	// is the binary alone, and it calls AWS over HTTPS.
	_ "golang.org/x/crypto/x509roots/fallback"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the broker and HTTP API (embedded default: ./data)", runServe},
		{"produce", "produce records from stdin or files", runProduce},
		{"consume", "consume records by offset, time, tail or as a group member", runConsume},
		{"topics", "create, list, describe, alter and delete topics", runTopics},
		{"groups", "list, describe, lag, reset and delete consumer groups", runGroups},
		{"bench", "measure latency, throughput, storage requests and cost per GB", runBench},
		{"compact", "run one compaction pass (retention, merges, GC)", runCompact},
		{"fsck", "check the storage invariants without changing anything", runFsck},
		{"token", "make a bearer token and its hashed policy entry", runToken},
		{"version", "print the version", func(_ context.Context, _ []string, out, _ io.Writer) error {
			_, err := fmt.Fprintln(out, "streambed", version)
			return err
		}},
	}
}

var version = "0.1.0-dev"

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: streambed <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'streambed <command> -h' for a command's flags.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	args = hoistFlags(args)
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
				if err == errUsage {
					return 2
				}
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					// Interrupted (Ctrl-C on consume -f, say): a normal
					// end, with the shell's code for it and no message.
					return 130
				}
				if err == errHelp {
					return 0
				}
				name := c.name
				if ce, ok := err.(*cmdError); ok {
					name = ce.name
				}
				fmt.Fprintln(stderr, "streambed "+name+": "+err.Error())
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "streambed: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// hoistFlags moves flags given before the command (`streambed --url X
// topics list`) to just after the command and its subcommand, where the
// command's flag set reads them (`streambed topics list --url X`). A flag
// without "=" takes the next word as its value unless that word is a
// command.
func hoistFlags(args []string) []string {
	isCommand := func(w string) bool {
		for _, c := range commands() {
			if c.name == w {
				return true
			}
		}
		return false
	}
	var flags []string
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-h" && args[i] != "--help" {
		flags = append(flags, args[i])
		if !strings.Contains(args[i], "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && !isCommand(args[i+1]) {
			flags = append(flags, args[i+1])
			i++
		}
		i++
	}
	if len(flags) == 0 || i >= len(args) {
		return args
	}
	rest := args[i:]
	path := 1 // the command
	if (rest[0] == "topics" || rest[0] == "groups") && len(rest) > 1 && !strings.HasPrefix(rest[1], "-") {
		path = 2 // and its subcommand
	}
	out := append([]string{}, rest[:path]...)
	out = append(out, flags...)
	return append(out, rest[path:]...)
}

// errUsage: the flag package already printed the problem.
var errUsage = fmt.Errorf("usage")

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
