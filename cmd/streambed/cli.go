package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/client/awsauth"
)

// endpoint holds the flags every command that talks to a server shares.
type endpoint struct {
	url, token, sigv4, region string
	timeout                   time.Duration
}

func endpointFlags(fs *flag.FlagSet) *endpoint {
	e := &endpoint{}
	fs.StringVar(&e.url, "url", envDefault("STREAMBED_URL", "http://localhost:8080"), "Streambed endpoint (env STREAMBED_URL)")
	fs.StringVar(&e.token, "token", "", "bearer token (env STREAMBED_TOKEN; prefer the variable: flags show in ps)")
	fs.StringVar(&e.sigv4, "sigv4", "", "sign requests with AWS SigV4 for IAM-authorized endpoints: execute-api (API Gateway) or lambda (function URL)")
	fs.StringVar(&e.region, "region", "", "AWS region for --sigv4 (default AWS_REGION)")
	fs.DurationVar(&e.timeout, "timeout", 60*time.Second, "timeout of each HTTP request")
	return e
}

func (e *endpoint) client(ctx context.Context) (*client.Client, error) {
	opts := []client.Option{client.WithTimeout(e.timeout), client.WithUserAgent("streambed-cli/" + version)}
	token := e.token
	if token == "" {
		token = os.Getenv("STREAMBED_TOKEN")
	}
	switch {
	case token != "" && e.sigv4 != "":
		return nil, errors.New("--token and --sigv4 exclude each other")
	case token != "":
		opts = append(opts, client.WithBearerToken(token))
	case e.sigv4 != "":
		var ao []awsauth.Option
		if e.region != "" {
			ao = append(ao, awsauth.WithRegion(e.region))
		}
		s, err := awsauth.New(ctx, e.sigv4, ao...)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithSigner(s))
	}
	return client.New(e.url, opts...)
}

// parseArgs parses flags that may appear before or after the positional
// arguments (`topics create orders --partitions 3`), as users of kcat and
// kafka-topics expect.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// newFlags returns a flag set whose usage names the command.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: streambed %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// usageErr maps a flag error to errUsage (flag printed it) or nil (-h).
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return errUsage
}

// errHelp: help was asked for and printed; exit 0.
var errHelp = errors.New("help")

func badArgs(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(fs.Output(), "streambed %s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return errUsage
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns for humans.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(toAny(header)...)
	return t
}

func (t *table) row(cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// subcommands dispatches `streambed <group> <verb> ...`.
func subcommands(ctx context.Context, group string, verbs []command, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, "usage: streambed %s <command> [flags]\n\ncommands:\n", group)
		for _, v := range verbs {
			fmt.Fprintf(stderr, "  %-10s %s\n", v.name, v.summary)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, v := range verbs {
		if v.name == args[0] {
			err := v.run(ctx, args[1:], stdout, stderr)
			if err != nil && err != errUsage && err != errHelp {
				return &cmdError{name: group + " " + v.name, err: err}
			}
			return err
		}
	}
	fmt.Fprintf(stderr, "streambed %s: unknown command %q\n", group, args[0])
	return errUsage
}

// parseTime accepts RFC 3339, a date, or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	var ms int64
	if _, err := fmt.Sscanf(s, "%d", &ms); err == nil && fmt.Sprint(ms) == s {
		return time.UnixMilli(ms), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-24T10:00:00Z), a date, Unix milliseconds or a duration ago (15m)", s)
}

// cmdError names the subcommand that failed ("topics create").
type cmdError struct {
	name string
	err  error
}

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func plural(n int64, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
