package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/client"
)

func runProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("produce", "produce TOPIC [FILE...] [flags]\n\nReads records from the files (or stdin) and produces them with the batching,\nidempotent producer. Formats:\n  lines   one record per line; with --key-sep, the line is KEY<sep>VALUE\n  ndjson  one JSON object per line: {\"key\":..,\"value\":..,\"headers\":..,\"partition\":..,\"timestamp\":..}\n          (value may be any JSON; key_b64/value_b64 for binary) - what `consume --format json` prints\n  raw     each file (or stdin) whole is one record", stderr)
	ep := endpointFlags(fs)
	format := fs.String("format", "lines", "input format: lines, ndjson or raw")
	keySep := fs.String("key-sep", "", "lines format: split each line at the first SEP into key and value (e.g. ':' or '\\t')")
	partition := fs.Int("partition", -1, "produce to this partition (default: by key, else sticky batches)")
	var headers multiFlag
	fs.Var(&headers, "header", "add header key=value to every record (repeatable)")
	batchBytes := fs.Int("batch-bytes", 1<<20, "bytes per partition batch before a request is sent")
	linger := fs.Duration("linger", 20*time.Millisecond, "how long a batch waits to fill")
	progress := fs.String("progress", "auto", "progress line on stderr: auto (when stderr is a terminal), always or never")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) == 0 {
		return badArgs(fs, "need a topic")
	}
	topic, files := pos[0], pos[1:]
	if *format != "lines" && *format != "ndjson" && *format != "raw" {
		return badArgs(fs, "--format %q: use lines, ndjson or raw", *format)
	}
	sep := strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(*keySep)
	if sep != "" && *format != "lines" {
		return badArgs(fs, "--key-sep only applies to --format lines")
	}
	var hdrs []client.Header
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return badArgs(fs, "--header %q: want key=value", h)
		}
		hdrs = append(hdrs, client.Header{Key: k, Value: []byte(v)})
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	var st produceStats
	prod, err := c.NewProducer(ctx, topic, client.WithBatchBytes(*batchBytes), client.WithLinger(*linger),
		client.WithDeliveryCallback(func(r client.Record, _ client.Delivery, err error) { st.delivered(r, err) }))
	if err != nil {
		return err
	}
	showProgress := *progress == "always" || (*progress == "auto" && isTerminal(stderr))
	stopProgress := func() {}
	if showProgress {
		stopProgress = st.report(stderr)
	}
	send := func(r client.Record) error {
		if *partition >= 0 {
			r.Partition, r.Pinned = int32(*partition), true
		}
		r.Headers = append(r.Headers, hdrs...)
		st.sent.Add(1)
		st.sentBytes.Add(int64(len(r.Key) + len(r.Value)))
		fut := prod.Produce(ctx, r)
		select {
		case <-fut.Done(): // rejected at once (e.g. no such partition): name the line
			if _, err := fut.Wait(ctx); err != nil {
				return &inputError{err}
			}
		default:
		}
		return st.firstErr()
	}
	readErr := forEachInput(files, func(name string, in io.Reader) error {
		return readRecords(name, in, *format, sep, send)
	})
	closeErr := prod.Close(ctx)
	stopProgress()
	if readErr != nil {
		return readErr
	}
	if err := st.firstErr(); err != nil {
		return fmt.Errorf("%d of %s failed (the first: %w)", st.failed.Load(), plural(st.sent.Load(), "record"), err)
	}
	if closeErr != nil {
		return closeErr
	}
	fmt.Fprintf(stderr, "produced %s (%s) to %s\n", plural(st.ok.Load(), "record"), humanBytes(st.okBytes.Load()), topic)
	return nil
}

// forEachInput calls fn for each named file, or for stdin ("-" or none).
func forEachInput(files []string, fn func(name string, in io.Reader) error) error {
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, name := range files {
		if name == "-" {
			if err := fn("stdin", os.Stdin); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = fn(name, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// readRecords parses one input and hands each record to send.
func readRecords(name string, in io.Reader, format, sep string, send func(client.Record) error) error {
	if format == "raw" {
		data, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return send(client.Record{Value: data})
	}
	br := bufio.NewReaderSize(in, 1<<20)
	for line := 1; ; line++ {
		data, err := br.ReadBytes('\n')
		if len(data) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", name, err)
		}
		data = bytes.TrimSuffix(data, []byte("\n"))
		var r client.Record
		switch {
		case format == "ndjson":
			if len(bytes.TrimSpace(data)) == 0 {
				continue
			}
			if r, err = decodeNDJSON(data); err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
		case sep != "":
			k, v, ok := bytes.Cut(data, []byte(sep))
			if !ok {
				return fmt.Errorf("%s:%d: no key separator %q in the line", name, line, sep)
			}
			r = client.Record{Key: bytes.Clone(k), Value: bytes.Clone(v)}
		default:
			r = client.Record{Value: bytes.Clone(data)}
		}
		if err := send(r); err != nil {
			var ie *inputError
			if errors.As(err, &ie) {
				return fmt.Errorf("%s:%d: %w", name, line, ie.err)
			}
			return err
		}
	}
}

// jsonRecord is the CLI's JSON form of a record: what `consume --format
// json` prints and `produce --format ndjson` reads. Text when valid UTF-8,
// *_b64 otherwise, so binary data round-trips.
type jsonRecord struct {
	Topic     string          `json:"topic,omitempty"`
	Partition *int32          `json:"partition,omitempty"`
	Offset    *int64          `json:"offset,omitempty"`
	Timestamp json.RawMessage `json:"timestamp,omitempty"`
	Key       *string         `json:"key,omitempty"`
	KeyB64    *string         `json:"key_b64,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	ValueB64  *string         `json:"value_b64,omitempty"`
	Headers   json.RawMessage `json:"headers,omitempty"`
}

func decodeNDJSON(data []byte) (client.Record, error) {
	var j jsonRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return client.Record{}, fmt.Errorf("not a record object: %w", err)
	}
	r := client.Record{}
	if j.Partition != nil {
		if *j.Partition < 0 {
			return r, errors.New("partition: must be >= 0")
		}
		r.Partition, r.Pinned = *j.Partition, true
	}
	var err error
	switch {
	case j.KeyB64 != nil:
		if r.Key, err = base64.StdEncoding.DecodeString(*j.KeyB64); err != nil {
			return r, fmt.Errorf("key_b64: %w", err)
		}
	case j.Key != nil:
		r.Key = []byte(*j.Key)
	}
	switch {
	case j.ValueB64 != nil:
		if r.Value, err = base64.StdEncoding.DecodeString(*j.ValueB64); err != nil {
			return r, fmt.Errorf("value_b64: %w", err)
		}
	case len(j.Value) > 0 && j.Value[0] == '"':
		var s string
		if err := json.Unmarshal(j.Value, &s); err != nil {
			return r, fmt.Errorf("value: %w", err)
		}
		r.Value = []byte(s)
	case len(j.Value) > 0 && string(j.Value) != "null":
		var buf bytes.Buffer
		if err := json.Compact(&buf, j.Value); err != nil {
			return r, fmt.Errorf("value: %w", err)
		}
		r.Value = buf.Bytes() // any other JSON value is the record's bytes
	}
	if len(j.Timestamp) > 0 {
		var ms int64
		var s string
		switch {
		case json.Unmarshal(j.Timestamp, &ms) == nil:
			r.Timestamp = time.UnixMilli(ms)
		case json.Unmarshal(j.Timestamp, &s) == nil:
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return r, fmt.Errorf("timestamp: %w", err)
			}
			r.Timestamp = t
		default:
			return r, errors.New("timestamp: want Unix milliseconds or an RFC 3339 string")
		}
	}
	if r.Headers, err = decodeHeaders(j.Headers); err != nil {
		return r, err
	}
	return r, nil
}

// decodeHeaders accepts the API's ordered list or a plain object.
func decodeHeaders(raw json.RawMessage) ([]client.Header, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []api.Header
	if err := json.Unmarshal(raw, &list); err == nil {
		out := make([]client.Header, 0, len(list))
		for _, h := range list {
			var v []byte
			switch {
			case h.ValueB64 != nil:
				b, err := base64.StdEncoding.DecodeString(*h.ValueB64)
				if err != nil {
					return nil, fmt.Errorf("headers: %s: value_b64: %w", h.Name, err)
				}
				v = b
			case h.Value != nil:
				v = []byte(*h.Value)
			}
			out = append(out, client.Header{Key: h.Name, Value: v})
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New(`headers: want [{"name":..,"value":..}] or {"name":"value"}`)
	}
	var out []client.Header
	for dec.More() {
		k, _ := dec.Token()
		var v *string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("headers: %v: value must be a string or null", k)
		}
		h := client.Header{Key: fmt.Sprint(k)}
		if v != nil {
			h.Value = []byte(*v)
		}
		out = append(out, h)
	}
	return out, nil
}

// produceStats counts what was sent and acknowledged (updated from
// delivery callbacks) and keeps the first failure.
type produceStats struct {
	sent, sentBytes, ok, okBytes, failed atomic.Int64
	mu                                   sync.Mutex
	err                                  error
}

func (s *produceStats) delivered(r client.Record, err error) {
	if err != nil {
		s.failed.Add(1)
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
		return
	}
	s.ok.Add(1)
	s.okBytes.Add(int64(len(r.Key) + len(r.Value)))
}

func (s *produceStats) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// report redraws a progress line until the returned stop is called.
func (s *produceStats) report(w io.Writer) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	draw := func() {
		secs := max(time.Since(start).Seconds(), 0.001)
		n, b := s.ok.Load(), s.okBytes.Load()
		fmt.Fprintf(w, "\r%12d records  %10s  %10.0f rec/s  %8.2f MB/s  %5.1fs ", n, humanBytes(b), float64(n)/secs, float64(b)/secs/1e6, secs)
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-done:
				draw()
				fmt.Fprintln(w)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// inputError is a record rejected because of what the input says.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
