package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
)

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(q url.Values, name string, lo, hi, def int64) (int64, *api.Problem) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fieldProblem(name, "%q is not an integer", v)
	}
	if n < lo || n > hi {
		return 0, fieldProblem(name, "%d must be between %d and %d", n, lo, hi)
	}
	return n, nil
}

// readParams are the query parameters shared by the consume forms.
type readParams struct {
	maxRecords int
	maxBytes   int
	wait       time.Duration
	format     Format
}

func (s *Server) readParams(q url.Values) (readParams, *api.Problem) {
	l := s.b.Limits()
	var rp readParams
	n, p := intParam(q, "max_records", 1, 10000, 1000)
	if p != nil {
		return rp, p
	}
	rp.maxRecords = int(n)
	if n, p = intParam(q, "max_bytes", 1, int64(l.MaxResponseBytes), int64(l.MaxResponseBytes)*2/3); p != nil {
		return rp, p
	}
	rp.maxBytes = int(n)
	if n, p = intParam(q, "wait_ms", 0, l.MaxWait.Milliseconds(), 0); p != nil {
		return rp, p
	}
	rp.wait = time.Duration(n) * time.Millisecond
	f, err := parseFormat(q.Get("format"))
	if err != nil {
		return rp, fieldProblem("format", "%v", err)
	}
	rp.format = f
	return rp, nil
}

// startOffset resolves where a read begins: Last-Event-ID (SSE resume),
// offset, timestamp, from=earliest|latest, tail=N, or the log start.
func (s *Server) startOffset(ctx context.Context, topic string, p int32, q url.Values, lastEventID string) (int64, error) {
	if lastEventID != "" {
		off, err := strconv.ParseInt(lastEventID, 10, 64)
		if err != nil || off < 0 {
			return 0, fieldProblem("Last-Event-ID", "%q is not an offset", lastEventID)
		}
		return off, nil
	}
	given := []string{}
	for _, k := range []string{"offset", "timestamp", "from", "tail"} {
		if q.Has(k) {
			given = append(given, k)
		}
	}
	if len(given) > 1 {
		return 0, fieldProblem(given[1], "give only one of offset, timestamp, from and tail")
	}
	mode := "from"
	if len(given) == 1 {
		mode = given[0]
	}
	switch mode {
	case "offset":
		return intParamErr(q, "offset", 0, 1<<62)
	case "timestamp":
		ts, err := intParamErr(q, "timestamp", 0, 1<<62)
		if err != nil {
			return 0, err
		}
		off, _, _, _, err := s.b.OffsetForTimestamp(ctx, topic, p, ts)
		return off, err
	}
	states, err := s.b.Partitions(ctx, topic, p)
	if err != nil {
		return 0, err
	}
	st := states[0]
	if mode == "tail" {
		n, err := intParamErr(q, "tail", 0, 1<<62)
		if err != nil {
			return 0, err
		}
		return max(st.LogStart, st.LogEnd-n), nil
	}
	switch q.Get("from") {
	case "", "earliest":
		return st.LogStart, nil
	case "latest":
		return st.LogEnd, nil
	}
	return 0, fieldProblem("from", "%q: use earliest or latest", q.Get("from"))
}

func intParamErr(q url.Values, name string, lo, hi int64) (int64, error) {
	n, p := intParam(q, name, lo, hi, 0)
	if p != nil {
		return 0, p
	}
	return n, nil
}

func wants(r *http.Request, mediaType string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == mediaType {
			return true
		}
	}
	return false
}

func (s *Server) consume(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	p, ok := s.partitionParam(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	rp, prob := s.readParams(q)
	if prob != nil {
		s.problem(w, r, prob)
		return
	}
	sse := wants(r, "text/event-stream")
	lastID := ""
	if sse {
		lastID = r.Header.Get("Last-Event-ID")
	}
	off, err := s.startOffset(r.Context(), name, p, q, lastID)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	if sse {
		s.stream(w, r, name, p, off, rp)
		return
	}
	res, err := s.b.Fetch(r.Context(), broker.FetchRequest{Topic: name, Partition: p, Offset: off, MaxRecords: rp.maxRecords, MaxBytes: rp.maxBytes, Wait: rp.wait})
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	ndjson := wants(r, "application/x-ndjson")
	body := make([]byte, 0, 4096)
	if !ndjson {
		body = append(body, `{"records":[`...)
	}
	limit := s.b.Limits().MaxResponseBytes - 256
	next := res.NextOffset
	for i := range res.Records {
		mark := len(body)
		if i > 0 && !ndjson {
			body = append(body, ',')
		}
		body = appendRecord(body, "", p, &res.Records[i], rp.format)
		if ndjson {
			body = append(body, '\n')
		}
		if len(body) > limit && i > 0 {
			// Encoding inflated the records past the response cap: stop here.
			body, next = body[:mark], res.Records[i].Offset
			break
		}
	}
	h := w.Header()
	h.Set("Streambed-Next-Offset", strconv.FormatInt(next, 10))
	h.Set("Streambed-Log-Start-Offset", strconv.FormatInt(res.LogStart, 10))
	h.Set("Streambed-Log-End-Offset", strconv.FormatInt(res.LogEnd, 10))
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		body = fmt.Appendf(body, `],"next_offset":%d,"log_start_offset":%d,"log_end_offset":%d}`+"\n", next, res.LogStart, res.LogEnd)
		h.Set("Content-Type", "application/json")
	}
	_, _ = w.Write(body)
}

// stream serves Server-Sent Events: one "record" event per record, with id
// = the next offset, so a reconnecting client resumes with Last-Event-ID.
// Idle streams get a comment every PingInterval; offsets skipped by
// compaction move the id forward without an event.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, topic string, p int32, off int64, rp readParams) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.problem(w, r, api.NewProblem(api.CodeInternal, "streaming is not supported by this transport"))
		return
	}
	// Fail before the stream starts if the offset is already invalid.
	if _, err := s.b.Fetch(r.Context(), broker.FetchRequest{Topic: topic, Partition: p, Offset: off, MaxRecords: 1}); err != nil {
		s.fail(w, r, err, false)
		return
	}
	release, prob := s.streams.acquire(s, r)
	if prob != nil {
		s.problem(w, r, prob)
		return
	}
	defer release()
	// The stream ends when the caller's credential expires or the policy
	// stops granting it the topic, checked every few seconds (in memory).
	streamCtx, stop := context.WithCancelCause(r.Context())
	defer stop(nil)
	go s.watchGrant(streamCtx, stop, r, topic)
	r = r.WithContext(streamCtx)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	buf := []byte("retry: 3000\n: streaming " + topic + "/" + strconv.Itoa(int(p)) + " from offset " + strconv.FormatInt(off, 10) + "\n\n")
	_, _ = w.Write(buf)
	flusher.Flush()
	// The stream ends (with an "end" event) after StreamMaxDuration, or
	// shortly before the request's deadline (a Lambda invocation's); the
	// client resumes with Last-Event-ID.
	var deadline <-chan time.Time
	limit := s.opts.StreamMaxDuration
	if dl, ok := r.Context().Deadline(); ok {
		if left := time.Until(dl) - s.opts.PingInterval - time.Second; limit == 0 || left < limit {
			limit = max(left, time.Millisecond)
		}
	}
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		deadline = t.C
	}
	for {
		ctx, cancel := r.Context(), context.CancelFunc(func() {})
		if s.opts.RequestTimeout > 0 {
			ctx, cancel = context.WithTimeoutCause(ctx, s.opts.RequestTimeout+s.opts.PingInterval, errRequestTimeout)
		}
		res, err := s.b.Fetch(ctx, broker.FetchRequest{Topic: topic, Partition: p, Offset: off, MaxRecords: min(rp.maxRecords, 500), MaxBytes: rp.maxBytes, Wait: s.opts.PingInterval})
		cancel()
		if r.Context().Err() != nil {
			var revoked *api.Problem
			if errors.As(context.Cause(r.Context()), &revoked) {
				revoked.RequestID = requestID(r)
				pj, _ := json.Marshal(revoked)
				_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", pj)
				flusher.Flush()
			}
			return
		}
		buf = buf[:0]
		if err != nil {
			prob := problemFor(err, false)
			prob.RequestID = requestID(r)
			pj, _ := json.Marshal(prob)
			buf = fmt.Appendf(buf, "event: error\ndata: %s\n\n", pj)
			_, _ = w.Write(buf)
			flusher.Flush()
			return
		}
		for i := range res.Records {
			rec := &res.Records[i]
			buf = fmt.Appendf(buf, "id: %d\nevent: record\ndata: ", rec.Offset+1)
			buf = appendRecord(buf, "", p, rec, rp.format)
			buf = append(buf, "\n\n"...)
		}
		switch {
		case len(res.Records) == 0 && res.NextOffset > off:
			buf = fmt.Appendf(buf, "id: %d\n\n", res.NextOffset) // skip a compacted gap
		case len(res.Records) == 0:
			buf = append(buf, ": ping\n\n"...)
		}
		off = res.NextOffset
		if _, err := w.Write(buf); err != nil {
			return
		}
		flusher.Flush()
		select {
		case <-s.b.Draining():
		case <-deadline:
		default:
			continue
		}
		_, _ = fmt.Fprintf(w, "event: end\ndata: {\"next_offset\":%d}\n\n", off)
		flusher.Flush()
		return
	}
}

func (s *Server) fetch(w http.ResponseWriter, r *http.Request) {
	var in api.FetchRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	l := s.b.Limits()
	switch {
	case len(in.Partitions) == 0:
		s.problem(w, r, fieldProblem("partitions", "name at least one partition"))
		return
	case len(in.Partitions) > broker.MaxFetchPartitions:
		s.problem(w, r, fieldProblem("partitions", "%d partitions, the limit is %d", len(in.Partitions), broker.MaxFetchPartitions))
		return
	case in.WaitMs != nil && (*in.WaitMs < 0 || *in.WaitMs > l.MaxWait.Milliseconds()):
		s.problem(w, r, fieldProblem("wait_ms", "%d must be between 0 and %d", *in.WaitMs, l.MaxWait.Milliseconds()))
		return
	case in.MaxRecords != nil && (*in.MaxRecords < 1 || *in.MaxRecords > 10000):
		s.problem(w, r, fieldProblem("max_records", "%d must be between 1 and 10000", *in.MaxRecords))
		return
	case in.MaxBytes != nil && (*in.MaxBytes < 1 || *in.MaxBytes > l.MaxResponseBytes):
		s.problem(w, r, fieldProblem("max_bytes", "%d must be between 1 and %d", *in.MaxBytes, l.MaxResponseBytes))
		return
	}
	format, err := parseFormat(in.Format)
	if err != nil {
		s.problem(w, r, fieldProblem("format", "%v", err))
		return
	}
	for _, fp := range in.Partitions {
		if !s.may(w, r, auth.Consume, auth.Topic, fp.Topic) {
			return
		}
	}
	reqs := make([]broker.FetchRequest, len(in.Partitions))
	for i, fp := range in.Partitions {
		if fp.Offset < 0 || fp.Partition < 0 {
			s.problem(w, r, fieldProblem(fmt.Sprintf("partitions[%d]", i), "partition and offset must not be negative"))
			return
		}
		reqs[i] = broker.FetchRequest{Topic: fp.Topic, Partition: fp.Partition, Offset: fp.Offset}
	}
	maxRecords, maxBytes, wait := 1000, l.MaxResponseBytes*2/3, time.Duration(0)
	if in.MaxRecords != nil {
		maxRecords = *in.MaxRecords
	}
	if in.MaxBytes != nil {
		maxBytes = *in.MaxBytes
	}
	if in.WaitMs != nil {
		wait = time.Duration(*in.WaitMs) * time.Millisecond
	}
	results := s.b.FetchMany(r.Context(), reqs, maxRecords, maxBytes, wait)
	body := append(make([]byte, 0, 4096), `{"results":[`...)
	for i, res := range results {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"topic":`...)
		body = appendString(body, reqs[i].Topic)
		body = fmt.Appendf(body, `,"partition":%d`, reqs[i].Partition)
		if res.Err != nil {
			ref, _ := json.Marshal(errorRef(res.Err))
			body = append(body, `,"error":`...)
			body = append(body, ref...)
			var oor *broker.OffsetOutOfRangeError
			if errors.As(res.Err, &oor) {
				body = fmt.Appendf(body, `,"log_start_offset":%d,"log_end_offset":%d`, oor.LogStart, oor.LogEnd)
			}
			body = append(body, '}')
			continue
		}
		body = append(body, `,"records":[`...)
		for j := range res.Records {
			if j > 0 {
				body = append(body, ',')
			}
			body = appendRecord(body, "", reqs[i].Partition, &res.Records[j], format)
		}
		body = fmt.Appendf(body, `],"next_offset":%d,"log_start_offset":%d,"log_end_offset":%d}`, res.NextOffset, res.LogStart, res.LogEnd)
	}
	body = append(body, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// grantRecheck is how often an open stream checks its caller's credential
// and grants again.
const grantRecheck = 2 * time.Second

// watchGrant ends a stream (stop with a problem as the cause) once its
// caller's credential has expired or been removed, or the policy no longer
// lets it consume the topic.
func (s *Server) watchGrant(ctx context.Context, stop context.CancelCauseFunc, r *http.Request, topic string) {
	a := s.opts.Auth
	if a == nil {
		return
	}
	id, _ := r.Context().Value(identityKey{}).(auth.Identity)
	t := time.NewTicker(grantRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch {
		case !a.Valid(id):
			stop(api.NewProblem(api.CodeUnauthenticated, "the credential expired or was revoked; authenticate again and resume from the last event id"))
			return
		case !a.Allowed(id, auth.Consume, auth.Topic, topic):
			stop(api.NewProblem(api.CodeForbidden, fmt.Sprintf("principal %s may no longer consume topic %s", id.Principal, topic)))
			return
		}
	}
}

// streamSlots bounds open SSE streams, per server process and, with
// authentication, per principal (auth.Limits.Streams).
type streamSlots struct {
	mu          sync.Mutex
	total       int
	byPrincipal map[string]int
}

func (sl *streamSlots) acquire(s *Server, r *http.Request) (func(), *api.Problem) {
	who := principal(r)
	perPrincipal := 0
	if s.opts.Auth != nil {
		perPrincipal = s.opts.Auth.LimitsOf(who).Streams
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.byPrincipal == nil {
		sl.byPrincipal = map[string]int{}
	}
	var p *api.Problem
	switch {
	case s.opts.MaxStreams > 0 && sl.total >= s.opts.MaxStreams:
		p = api.NewProblem(api.CodeThrottled, fmt.Sprintf("this server already serves %d streams, its limit; retry later or on another server", s.opts.MaxStreams))
	case perPrincipal > 0 && sl.byPrincipal[who] >= perPrincipal:
		p = api.NewProblem(api.CodeThrottled, fmt.Sprintf("principal %s already has %d open streams, its limit; close one first", who, perPrincipal))
	}
	if p != nil {
		p.RetryAfter = 5
		return nil, p
	}
	sl.total++
	sl.byPrincipal[who]++
	return func() {
		sl.mu.Lock()
		sl.total--
		if sl.byPrincipal[who]--; sl.byPrincipal[who] <= 0 {
			delete(sl.byPrincipal, who)
		}
		sl.mu.Unlock()
	}, nil
}
