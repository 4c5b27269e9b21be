package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/streambed/streambed/pkg/client"
)

func runConsume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("consume", "consume TOPIC [flags]\n\nPrints records and exits at the end of the log (the log end when it started),\nor keeps waiting with --follow. Formats:\n  text   the value, one per line\n  json   one JSON object per line (what `produce --format ndjson` reads)\n  any other string is a template like kcat's -f: %t topic, %p partition,\n         %o offset, %k key, %s value, %T timestamp (ms), %h headers,\n         %K key size, %S value size, %% percent, \\n \\t escapes", stderr)
	ep := endpointFlags(fs)
	var parts multiFlag
	fs.Var(&parts, "partition", "read only this partition (repeatable; default all)")
	offset := fs.String("offset", "earliest", "where to start: earliest, latest or an offset")
	fromTime := fs.String("from-time", "", "start at the first record at or after this time (RFC 3339, Unix ms, or a duration ago like 15m)")
	tail := fs.Int64("tail", -1, "start N records before the end of each partition")
	group := fs.String("group", "", "consume as a member of this consumer group (committing offsets)")
	format := fs.String("format", "text", "text, json, or a template (see above)")
	follow := fs.Bool("follow", false, "keep waiting for new records (also -f)")
	fs.BoolVar(follow, "f", false, "same as --follow")
	maxRecords := fs.Int64("max-records", 0, "exit after this many records (0: no limit)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return badArgs(fs, "need exactly one topic")
	}
	topic := pos[0]
	starts := 0
	for _, set := range []bool{*offset != "earliest", *fromTime != "", *tail >= 0} {
		if set {
			starts++
		}
	}
	if starts > 1 {
		return badArgs(fs, "--offset, --from-time and --tail exclude each other")
	}
	var start client.ReadOptions
	switch {
	case *fromTime != "":
		t, err := parseTime(*fromTime)
		if err != nil {
			return badArgs(fs, "--from-time: %v", err)
		}
		start.Timestamp = &t
	case *tail >= 0:
		start.Tail = tail
	case *offset == "earliest" || *offset == "latest":
		start.From = *offset
	default:
		n, err := strconv.ParseInt(*offset, 10, 64)
		if err != nil || n < 0 {
			return badArgs(fs, "--offset %q: use earliest, latest or an offset >= 0", *offset)
		}
		start.Offset = &n
	}
	out, err := newPrinter(stdout, *format)
	if err != nil {
		return badArgs(fs, "%v", err)
	}
	out.limit = *maxRecords
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out.cancel = cancel
	if *group != "" {
		if len(parts) > 0 || start.Offset != nil || start.Timestamp != nil || start.Tail != nil {
			return badArgs(fs, "--group assigns partitions and starts at the committed offsets: only --offset earliest|latest applies (for partitions without a commit)")
		}
		err = consumeGroup(ctx, c, *group, topic, start.From, *follow, out)
	} else {
		err = consumePartitions(ctx, c, topic, parts, start, *follow, out)
	}
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if out.done() {
		return nil // --max-records reached: the cancel was ours
	}
	return err
}

func consumePartitions(ctx context.Context, c *client.Client, topic string, only []string, start client.ReadOptions, follow bool, out *printer) error {
	t, err := c.Topic(ctx, topic)
	if err != nil {
		return err
	}
	var ps []int32
	for _, s := range only {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 || int32(n) >= t.Partitions {
			return fmt.Errorf("--partition %q: topic %s has partitions 0..%d", s, topic, t.Partitions-1)
		}
		ps = append(ps, int32(n))
	}
	if len(ps) == 0 {
		for p := range t.Partitions {
			ps = append(ps, p)
		}
	}
	if !follow {
		for _, p := range ps { // one after the other: deterministic output
			if err := readPartition(ctx, c, topic, p, start, false, out); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ps))
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readPartition(ctx, c, topic, p, start, true, out)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return ctx.Err()
}

// readPartition prints one partition from start to its end (the log end
// seen by the first read), or forever when following.
func readPartition(ctx context.Context, c *client.Client, topic string, p int32, start client.ReadOptions, follow bool, out *printer) error {
	opt := start
	opt.MaxRecords = 1000
	end := int64(-1)
	for {
		res, err := c.Read(ctx, topic, p, opt)
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		if end < 0 {
			end = res.LogEndOffset
		}
		for _, r := range res.Records {
			if !follow && r.Offset >= end {
				return nil
			}
			if !out.print(r) {
				return nil
			}
		}
		if err := out.flush(); err != nil {
			return err
		}
		if !follow && res.NextOffset >= end {
			return nil
		}
		next := res.NextOffset
		opt = client.ReadOptions{Offset: &next, MaxRecords: 1000}
		if follow {
			opt.Wait = 20 * time.Second
		}
	}
}

func consumeGroup(ctx context.Context, c *client.Client, group, topic, reset string, follow bool, out *printer) error {
	opts := []client.ConsumerOption{client.WithPollWait(time.Second)}
	if reset != "" {
		opts = append(opts, client.WithAutoOffsetReset(reset))
	}
	if follow {
		opts[0] = client.WithPollWait(20 * time.Second)
	}
	cs, err := c.NewConsumer(group, []string{topic}, opts...)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		cs.Close(cctx) // commits what was printed and leaves the group
	}()
	for {
		recs, err := cs.Poll(ctx)
		if err != nil {
			if out.done() {
				return nil
			}
			return err
		}
		for i, r := range recs {
			if !out.print(r) {
				// Commit exactly what was printed: every partition goes back
				// to its first record of this poll that was not.
				unprinted := map[client.TopicPartition]bool{}
				for _, rest := range recs[i:] {
					tp := client.TopicPartition{Topic: rest.Topic, Partition: rest.Partition}
					if !unprinted[tp] {
						unprinted[tp] = true
						cs.Seek(tp, rest.Offset)
					}
				}
				return nil
			}
		}
		if err := out.flush(); err != nil {
			return err
		}
		if len(recs) == 0 && !follow {
			done, err := caughtUp(ctx, c, topic, cs)
			if err != nil || done {
				return err
			}
		}
	}
}

// caughtUp reports whether the member owns partitions and has read each
// to its log end (an unread, non-empty partition has no position yet).
func caughtUp(ctx context.Context, c *client.Client, topic string, cs *client.Consumer) (bool, error) {
	assigned := cs.Assignment()
	if len(assigned) == 0 {
		return false, nil
	}
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return false, err
	}
	for _, tp := range assigned {
		for _, p := range parts {
			if p.Partition != tp.Partition {
				continue
			}
			pos, ok := cs.Position(tp)
			if (ok && pos < p.LogEndOffset) || (!ok && p.LogEndOffset > p.LogStartOffset) {
				return false, nil
			}
		}
	}
	return true, nil
}

// printer writes records in one format, safe for concurrent partitions,
// and stops everything once the record limit is reached.
type printer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	format string
	tmpl   []tmplPart
	limit  int64
	n      int64
	cancel func()
}

type tmplPart struct {
	lit  string
	verb byte
}

func newPrinter(w io.Writer, format string) (*printer, error) {
	p := &printer{w: bufio.NewWriterSize(w, 64<<10), format: format}
	if format == "text" || format == "json" {
		return p, nil
	}
	if !strings.Contains(format, "%") {
		return nil, fmt.Errorf("--format %q: use text, json or a template with %%-verbs (%%s value, %%k key, ...)", format)
	}
	format = strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\r`, "\r").Replace(format)
	var lit strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			lit.WriteByte(format[i])
			continue
		}
		if i+1 >= len(format) {
			return nil, errors.New("--format: template ends in a lone %")
		}
		i++
		v := format[i]
		if v == '%' {
			lit.WriteByte('%')
			continue
		}
		if !strings.ContainsRune("tpoksThKS", rune(v)) {
			return nil, fmt.Errorf("--format: unknown verb %%%c (known: %%t %%p %%o %%k %%s %%T %%h %%K %%S)", v)
		}
		p.tmpl = append(p.tmpl, tmplPart{lit: lit.String()}, tmplPart{verb: v})
		lit.Reset()
	}
	p.tmpl = append(p.tmpl, tmplPart{lit: lit.String()})
	p.format = "template"
	return p, nil
}

// print writes r; false once the limit was reached (r not printed).
func (p *printer) print(r client.Record) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.n >= p.limit {
		return false
	}
	p.n++
	switch p.format {
	case "text":
		p.w.Write(r.Value)
		p.w.WriteByte('\n')
	case "json":
		data, _ := json.Marshal(toJSONRecord(r))
		p.w.Write(data)
		p.w.WriteByte('\n')
	default:
		for _, t := range p.tmpl {
			if t.verb == 0 {
				p.w.WriteString(t.lit)
				continue
			}
			switch t.verb {
			case 't':
				p.w.WriteString(r.Topic)
			case 'p':
				p.w.WriteString(strconv.Itoa(int(r.Partition)))
			case 'o':
				p.w.WriteString(strconv.FormatInt(r.Offset, 10))
			case 'k':
				p.w.Write(r.Key)
			case 's':
				p.w.Write(r.Value)
			case 'T':
				p.w.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))
			case 'K':
				p.w.WriteString(strconv.Itoa(len(r.Key)))
			case 'S':
				p.w.WriteString(strconv.Itoa(len(r.Value)))
			case 'h':
				for i, h := range r.Headers {
					if i > 0 {
						p.w.WriteByte(',')
					}
					p.w.WriteString(h.Key + "=")
					p.w.Write(h.Value)
				}
			}
		}
	}
	if p.limit > 0 && p.n >= p.limit && p.cancel != nil {
		p.cancel()
	}
	return true
}

func (p *printer) done() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit > 0 && p.n >= p.limit
}

func (p *printer) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w.Flush()
}

func toJSONRecord(r client.Record) jsonRecord {
	part, off := r.Partition, r.Offset
	j := jsonRecord{Topic: r.Topic, Partition: &part, Offset: &off, Timestamp: json.RawMessage(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))}
	if r.Key != nil {
		if utf8.Valid(r.Key) {
			s := string(r.Key)
			j.Key = &s
		} else {
			s := base64.StdEncoding.EncodeToString(r.Key)
			j.KeyB64 = &s
		}
	}
	if r.Value != nil {
		if utf8.Valid(r.Value) {
			j.Value, _ = json.Marshal(string(r.Value))
		} else {
			s := base64.StdEncoding.EncodeToString(r.Value)
			j.ValueB64 = &s
		}
	}
	if len(r.Headers) > 0 {
		type hdr struct {
			Name     string  `json:"name"`
			Value    *string `json:"value"`
			ValueB64 *string `json:"value_b64,omitempty"`
		}
		hs := make([]hdr, len(r.Headers))
		for i, h := range r.Headers {
			hs[i].Name = h.Key
			if h.Value != nil {
				if utf8.Valid(h.Value) {
					s := string(h.Value)
					hs[i].Value = &s
				} else {
					s := base64.StdEncoding.EncodeToString(h.Value)
					hs[i].ValueB64 = &s
				}
			}
		}
		j.Headers, _ = json.Marshal(hs)
	}
	return j
}
