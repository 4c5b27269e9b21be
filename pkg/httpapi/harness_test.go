package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// contract validates responses against the OpenAPI document.
type contract struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema
	paths    []pathMatcher
	seen     map[string]bool // "METHOD template status"
}

type pathMatcher struct {
	template string
	re       *regexp.Regexp
}

var (
	contractOnce sync.Once
	theContract  *contract
)

func loadContract(t testing.TB) *contract {
	contractOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(httpapi.OpenAPI()))
		if err != nil {
			panic(err)
		}
		c := &contract{doc: doc.(map[string]any), compiler: jsonschema.NewCompiler(), schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
		c.compiler.DefaultDraft(jsonschema.Draft2020)
		if err := c.compiler.AddResource("mem://openapi.json", doc); err != nil {
			panic(err)
		}
		for tmpl := range c.doc["paths"].(map[string]any) {
			segs := strings.Split(tmpl, "/")
			for i, seg := range segs {
				if strings.HasPrefix(seg, "{") {
					segs[i] = `[^/]+`
				} else {
					segs[i] = regexp.QuoteMeta(seg)
				}
			}
			c.paths = append(c.paths, pathMatcher{tmpl, regexp.MustCompile("^" + strings.Join(segs, "/") + "$")})
		}
		theContract = c
	})
	return theContract
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check validates one response; v1 routes only (Confluent routes follow
// Confluent's spec, checked in their own tests).
func (c *contract) check(t testing.TB, method, path string, status int, contentType string, body []byte) {
	t.Helper()
	if !strings.HasPrefix(path, "/v1") {
		return
	}
	tmpl := ""
	for _, p := range c.paths {
		if p.re.MatchString(path) && (tmpl == "" || strings.Count(p.template, "{") < strings.Count(tmpl, "{")) {
			tmpl = p.template
		}
	}
	if tmpl == "" {
		if status == 404 {
			return // unknown endpoint: a problem, checked by its own test
		}
		t.Fatalf("OpenAPI has no path for %s %s", method, path)
	}
	op, ok := c.doc["paths"].(map[string]any)[tmpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		if status == 405 {
			return
		}
		t.Fatalf("OpenAPI has no %s %s", method, tmpl)
	}
	resp, ok := op["responses"].(map[string]any)[fmt.Sprint(status)].(map[string]any)
	if !ok {
		t.Fatalf("OpenAPI does not document status %d for %s %s", status, method, tmpl)
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %s %d", method, tmpl, status)] = true
	c.mu.Unlock()
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) != 0 {
			t.Fatalf("%s %s %d: OpenAPI says no body, got %q", method, tmpl, status, body)
		}
		return
	}
	ct := strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0])
	if _, ok := content[ct]; !ok {
		t.Fatalf("%s %s %d: content type %q not in OpenAPI", method, tmpl, status, ct)
	}
	if ct == "text/event-stream" {
		return
	}
	loc := fmt.Sprintf("mem://openapi.json#/paths/%s/%s/responses/%d/content/%s/schema", pointerEscape(tmpl), strings.ToLower(method), status, pointerEscape(ct))
	c.mu.Lock()
	sch, ok := c.schemas[loc]
	if !ok {
		var err error
		if sch, err = c.compiler.Compile(loc); err != nil {
			c.mu.Unlock()
			t.Fatalf("compile %s: %v", loc, err)
		}
		c.schemas[loc] = sch
	}
	c.mu.Unlock()
	docs := [][]byte{body}
	if ct == "application/x-ndjson" {
		docs = bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	}
	for _, d := range docs {
		if len(d) == 0 {
			continue
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(d))
		if err != nil {
			t.Fatalf("%s %s %d: body is not JSON: %v\n%s", method, tmpl, status, err, d)
		}
		if err := sch.Validate(v); err != nil {
			t.Fatalf("%s %s %d: response does not match OpenAPI: %v\nbody: %s", method, tmpl, status, err, d)
		}
	}
}

// env is an API over in-memory ports with a settable clock.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	api    *httpapi.Server
	broker *broker.Broker
	store  *offsets.Store
	c      *contract
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, offsets.New(memtable.New()), membucket.New(), httpapi.Options{})
}

func newEnvWith(t *testing.T, store *offsets.Store, bucket segments.Bucket, opts httpapi.Options) *env {
	t.Helper()
	b := broker.New(store, bucket, broker.Config{PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond})
	if opts.PingInterval == 0 {
		opts.PingInterval = 200 * time.Millisecond
	}
	a := httpapi.New(b, opts)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(b.Drain)
	return &env{t: t, srv: srv, api: a, broker: b, store: store, c: loadContract(t)}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request (body: string, []byte, or a value marshalled as JSON)
// and checks the response against the OpenAPI document.
func (e *env) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.c.check(e.t, method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), data)
	return response{resp.StatusCode, resp.Header, data}
}

// want asserts a status, and for errors the problem code and field.
func (e *env) want(r response, status int, code ...string) map[string]any {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if len(code) == 0 {
		if len(r.body) == 0 {
			return nil
		}
		return r.json(e.t)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		e.t.Fatalf("error content type %q: %s", ct, r.body)
	}
	m := r.json(e.t)
	if m["code"] != code[0] {
		e.t.Fatalf("code %v, want %s: %s", m["code"], code[0], r.body)
	}
	if len(code) > 1 && m["field"] != code[1] {
		e.t.Fatalf("field %v, want %s: %s", m["field"], code[1], r.body)
	}
	if m["request_id"] == "" || r.header.Get("X-Request-Id") != m["request_id"] {
		e.t.Fatalf("problem without the request id: %s", r.body)
	}
	return m
}

func (e *env) createTopic(name string, parts int, config ...map[string]any) {
	e.t.Helper()
	body := map[string]any{"name": name, "partitions": parts}
	if len(config) > 0 {
		body["config"] = config[0]
	}
	e.want(e.do("POST", "/v1/topics", body), 201)
}
