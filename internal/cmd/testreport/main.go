// Command testreport reads `go test -json` and prints what plain `go test`
// would (package results, the output of failing tests), then remembers the
// tests that skipped and why, so `make test` can end with that list: a
// skipped integration test is otherwise invisible without -v.
//
//	go test -json ./... | testreport -skips bin/skipped-tests.txt
//	testreport -summary bin/skipped-tests.txt
//
// It exits 1 when a test or a package failed.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of test2json's output.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// maxBuffered bounds what is kept of one test's output while it runs; a
// failing test shows its last lines.
const maxBuffered = 256 << 10

type report struct {
	out     io.Writer
	buf     map[string]*strings.Builder
	skipped []skip
	failed  bool
}

type skip struct{ pkg, test, reason string }

func main() {
	skips := flag.String("skips", "", "append skipped tests to this file")
	summary := flag.String("summary", "", "print the skipped tests listed in this file and exit")
	flag.Parse()
	if *summary != "" {
		os.Exit(printSummary(os.Stdout, *summary))
	}
	r := &report{out: os.Stdout, buf: map[string]*strings.Builder{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if *skips != "" && len(r.skipped) > 0 {
		if err := appendSkips(*skips, r.skipped); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
	}
	if r.failed {
		os.Exit(1)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(r.out, "%s\n", line) // not an event (go vet's, a build's): as it is
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	key := e.Package + " " + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(r.out, e.Output)
	case e.Action == "build-fail":
		r.failed = true
	case e.Test == "" && e.Action == "output":
		if e.Output != "PASS\n" { // plain go test prints only "ok"
			fmt.Fprint(r.out, e.Output)
		}
	case e.Test == "" && e.Action == "fail":
		r.failed = true
	case e.Action == "output":
		b := r.buf[key]
		if b == nil {
			b = &strings.Builder{}
			r.buf[key] = b
		}
		if !strings.HasPrefix(e.Output, "=== ") {
			b.WriteString(e.Output)
		}
		if b.Len() > maxBuffered {
			tail := b.String()[b.Len()-maxBuffered/2:]
			b.Reset()
			b.WriteString("... (earlier output dropped)\n" + tail)
		}
	case e.Action == "fail":
		r.failed = true
		if b := r.buf[key]; b != nil {
			fmt.Fprint(r.out, b.String())
		}
		delete(r.buf, key)
	case e.Action == "skip" && e.Test == "":
		// A package without tests: go test prints "[no test files]".
	case e.Action == "skip":
		r.skipped = append(r.skipped, skip{e.Package, e.Test, reason(r.buf[key])})
		delete(r.buf, key)
	case e.Action == "pass":
		delete(r.buf, key)
	}
}

// reason is a skipped test's last message, on one line.
func reason(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "--- SKIP") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func appendSkips(path string, skips []skip) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	for _, s := range skips {
		fmt.Fprintf(f, "%s\t%s\t%s\n", s.pkg, s.test, strings.ReplaceAll(s.reason, "\t", " "))
	}
	return f.Close()
}

// printSummary prints the list, loudly when it is not empty.
func printSummary(w io.Writer, path string) int {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		return 2
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(data) == 0 || lines[0] == "" {
		fmt.Fprintln(w, "No test was skipped.")
		return 0
	}
	fmt.Fprintf(w, "\n*** %d tests were SKIPPED (not run, not passed):\n", len(lines))
	for _, l := range lines {
		f := strings.SplitN(l, "\t", 3)
		for len(f) < 3 {
			f = append(f, "")
		}
		fmt.Fprintf(w, "  %s %s: %s\n", f[0], f[1], f[2])
	}
	return 0
}
