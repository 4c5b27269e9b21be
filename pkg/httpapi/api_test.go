package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestInfoAndOpenAPI(t *testing.T) {
	e := newEnv(t)
	info := e.want(e.do("GET", "/v1", nil), 200)
	limits := info["limits"].(map[string]any)
	if limits["max_records_per_request"] != 1000.0 || limits["max_wait_ms"] != 20000.0 || limits["max_body_bytes"] != float64(5<<20) {
		t.Fatalf("limits %v", limits)
	}
	doc := e.want(e.do("GET", "/v1/openapi.json", nil), 200)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	// Every v1 route is documented, and every documented operation is served.
	paths := doc["paths"].(map[string]any)
	served := map[string]bool{}
	for _, r := range e.api.Routes() {
		if !strings.HasPrefix(r.Path, "/v1") {
			continue
		}
		served[r.Method+" "+r.Path] = true
		p, ok := paths[r.Path].(map[string]any)
		if !ok || p[strings.ToLower(r.Method)] == nil {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, r.Path)
		}
	}
	for path, item := range paths {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			if !served[strings.ToUpper(method)+" "+path] {
				t.Errorf("OpenAPI documents %s %s, which is not served", strings.ToUpper(method), path)
			}
		}
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("GET", "/v1/nope", nil), 404, "not_found")
	r := e.do("PUT", "/v1/topics/x", "{}")
	e.want(r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, PATCH, DELETE" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
}

func TestTopicLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/topics", map[string]any{"name": "orders", "partitions": 3, "config": map[string]any{"retention_ms": 3600000, "cleanup_policy": "compact"}})
	topic := e.want(r, 201)
	if r.header.Get("Location") != "/v1/topics/orders" || topic["partitions"] != 3.0 || topic["id"] == "" {
		t.Fatalf("created %v (Location %q)", topic, r.header.Get("Location"))
	}
	cfg := topic["config"].(map[string]any)
	if cfg["retention_ms"] != 3600000.0 || cfg["cleanup_policy"] != "compact" || cfg["max_record_bytes"] != float64(1<<20) {
		t.Fatalf("config %v", cfg)
	}
	e.want(e.do("POST", "/v1/topics", map[string]any{"name": "orders"}), 409, "topic_exists")
	// Kafka's names, as kafka-topics users type them: values as strings or
	// numbers; settings without meaning here are accepted and change nothing.
	kt := e.want(e.do("POST", "/v1/topics", map[string]any{"name": "kafka-named", "config": map[string]any{
		"retention.ms": "86400000", "cleanup.policy": "compact,delete", "max.message.bytes": 2048, "min.insync.replicas": "2"}}), 201)
	if c := kt["config"].(map[string]any); c["retention_ms"] != 86400000.0 || c["cleanup_policy"] != "compact,delete" || c["max_record_bytes"] != 2048.0 {
		t.Fatalf("Kafka-named config %v", c)
	}
	kt = e.want(e.do("PATCH", "/v1/topics/kafka-named", map[string]any{"config": map[string]any{"message.timestamp.type": "LogAppendTime"}}), 200)
	if c := kt["config"].(map[string]any); c["timestamp_type"] != "log_append" || c["retention_ms"] != 86400000.0 {
		t.Fatalf("Kafka-named patch %v", c)
	}
	e.want(e.do("DELETE", "/v1/topics/kafka-named", nil), 204)
	got := e.want(e.do("GET", "/v1/topics/orders", nil), 200)
	if got["id"] != topic["id"] {
		t.Fatal("describe returned another id")
	}
	upd := e.want(e.do("PATCH", "/v1/topics/orders", map[string]any{"partitions": 5, "config": map[string]any{"retention_bytes": 1000000}}), 200)
	if upd["partitions"] != 5.0 || upd["config"].(map[string]any)["retention_bytes"] != 1e6 || upd["config"].(map[string]any)["retention_ms"] != 3600000.0 {
		t.Fatalf("updated %v", upd)
	}
	parts := e.want(e.do("GET", "/v1/topics/orders/partitions", nil), 200)
	if len(parts["partitions"].([]any)) != 5 {
		t.Fatalf("partitions %v", parts)
	}
	for i := range 4 {
		e.createTopic(fmt.Sprintf("t%d", i), 1)
	}
	page := e.want(e.do("GET", "/v1/topics?limit=2", nil), 200)
	if len(page["topics"].([]any)) != 2 || page["next"] != "t0" {
		t.Fatalf("page 1 %v", page)
	}
	page = e.want(e.do("GET", "/v1/topics?limit=2&after=t1", nil), 200)
	if names := topicNames(page); !slices.Equal(names, []string{"t2", "t3"}) {
		t.Fatalf("page after t1: %v", names)
	}
	e.want(e.do("DELETE", "/v1/topics/orders", nil), 204)
	e.want(e.do("GET", "/v1/topics/orders", nil), 404, "unknown_topic")
	e.want(e.do("DELETE", "/v1/topics/orders", nil), 404, "unknown_topic")
}

func topicNames(list map[string]any) []string {
	var out []string
	for _, t := range list["topics"].([]any) {
		out = append(out, t.(map[string]any)["name"].(string))
	}
	return out
}

// snapshot captures what a bad request must not change.
func (e *env) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	list := e.do("GET", "/v1/topics", nil).json(e.t)
	for _, name := range topicNames(list) {
		fmt.Fprintf(&b, "%s:%s;", name, e.do("GET", "/v1/topics/"+name+"/partitions", nil).body)
	}
	return b.String()
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.createTopic("orders", 2, map[string]any{"max_record_bytes": 1000})
	e.want(e.do("POST", "/v1/topics/orders/partitions/0/records", map[string]any{"records": []any{map[string]any{"value": "first"}}, "producer": map[string]any{"id": 7, "epoch": 2, "base_sequence": 0}}), 200)
	big := strings.Repeat("x", 2000)
	many := make([]any, 1001)
	for i := range many {
		many[i] = map[string]any{"value": "x"}
	}
	long := strings.Repeat("a", 250)
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	bomb := gz([]byte(`{"records":[{"value":"` + strings.Repeat("0", 20<<20) + `"}]}`))
	cases := []struct {
		name        string
		method      string
		path        string
		body        any
		headers     []string
		status      int
		code, field string
	}{
		{"malformed JSON", "POST", "/v1/topics/orders/records", `{"records": [`, nil, 400, "invalid_json", ""},
		{"trailing garbage", "POST", "/v1/topics/orders/records", `{"records": []} x`, nil, 400, "invalid_json", ""},
		{"wrong content type", "POST", "/v1/topics/orders/records", `{"records":[]}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"body over the cap", "POST", "/v1/topics/orders/records", `{"records":[{"value":"` + strings.Repeat("y", 6<<20) + `"}]}`, nil, 413, "body_too_large", ""},
		{"empty body", "POST", "/v1/topics/orders/records", " ", nil, 400, "invalid_request", ""},
		{"no records", "POST", "/v1/topics/orders/records", map[string]any{"records": []any{}}, nil, 400, "invalid_request", "records"},
		{"records missing", "POST", "/v1/topics/orders/records", map[string]any{}, nil, 400, "invalid_request", "records"},
		{"unknown field", "POST", "/v1/topics/orders/records", `{"records":[{"valeu":"x"}]}`, nil, 400, "invalid_request", "records[0].valeu"},
		{"wrong type", "POST", "/v1/topics/orders/records", `{"records":[{"value":5}]}`, nil, 400, "invalid_request", "records[0].value"},
		{"record is null", "POST", "/v1/topics/orders/records", `{"records":[null]}`, nil, 400, "invalid_request", "records[0]"},
		{"unknown topic", "POST", "/v1/topics/nope/records", map[string]any{"records": []any{map[string]any{"value": "x"}}}, nil, 404, "unknown_topic", ""},
		{"unknown partition", "POST", "/v1/topics/orders/partitions/9/records", map[string]any{"records": []any{map[string]any{"value": "x"}}}, nil, 404, "unknown_partition", ""},
		{"unknown partition in a record", "POST", "/v1/topics/orders/records", map[string]any{"records": []any{map[string]any{"value": "x", "partition": 9}}}, nil, 404, "unknown_partition", "records[0].partition"},
		{"negative partition in a record", "POST", "/v1/topics/orders/records", map[string]any{"records": []any{map[string]any{"value": "x", "partition": -1}}}, nil, 400, "invalid_request", "records[0].partition"},
		{"non-numeric partition", "GET", "/v1/topics/orders/partitions/abc/records", nil, nil, 400, "invalid_request", "partition"},
		{"invalid base64 value", "POST", "/v1/topics/orders/records", `{"records":[{"value":"ok"},{"value_b64":"***"}]}`, nil, 400, "invalid_request", "records[1].value_b64"},
		{"invalid base64 key", "POST", "/v1/topics/orders/records", `{"records":[{"key_b64":"%%"}]}`, nil, 400, "invalid_request", "records[0].key_b64"},
		{"invalid base64 header", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v","headers":[{"name":"h","value_b64":"!"}]}]}`, nil, 400, "invalid_request", "records[0].headers[0].value_b64"},
		{"two values", "POST", "/v1/topics/orders/records", `{"records":[{"value":"a","value_b64":"YQ=="}]}`, nil, 400, "invalid_request", "records[0].value"},
		{"key and key_b64", "POST", "/v1/topics/orders/records", `{"records":[{"key":"a","key_b64":"YQ==","value":"v"}]}`, nil, 400, "invalid_request", "records[0].key"},
		{"record over max_record_bytes", "POST", "/v1/topics/orders/records", map[string]any{"records": []any{map[string]any{"value": "ok"}, map[string]any{"value": big}}}, nil, 413, "record_too_large", "records[1]"},
		{"too many records", "POST", "/v1/topics/orders/records", map[string]any{"records": many}, nil, 413, "too_many_records", "records"},
		{"offset given in produce", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v","offset":3}]}`, nil, 400, "invalid_request", "records[0].offset"},
		{"negative timestamp", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v","timestamp":-5}]}`, nil, 400, "invalid_request", "records[0].timestamp"},
		{"far-future timestamp", "POST", "/v1/topics/orders/records", fmt.Sprintf(`{"records":[{"value":"v","timestamp":%d}]}`, time.Now().Add(48*time.Hour).UnixMilli()), nil, 400, "invalid_request", "records[0].timestamp"},
		{"empty header name", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v","headers":[{"name":""}]}]}`, nil, 400, "invalid_request", "records[0].headers[0].name"},
		{"partition in a partition-level record", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v","partition":1}]}`, nil, 400, "invalid_request", "records[0].partition"},
		{"bad idempotency key", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v"}]}`, []string{"Idempotency-Key", "has space"}, 400, "invalid_request", "Idempotency-Key"},
		{"stale producer epoch", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v"}],"producer":{"id":7,"epoch":1,"base_sequence":1}}`, nil, 409, "producer_fenced", ""},
		{"sequence gap", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v"}],"producer":{"id":7,"epoch":2,"base_sequence":5}}`, nil, 409, "out_of_order_sequence", ""},
		{"negative producer fields", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v"}],"producer":{"id":-7,"epoch":2,"base_sequence":5}}`, nil, 400, "invalid_request", "producer"},
		{"stale expected offset", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v"}],"expected_offset":0}`, nil, 412, "expected_offset_mismatch", ""},
		{"negative expected offset", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v"}],"expected_offset":-2}`, nil, 400, "invalid_request", "expected_offset"},
		{"negative offset", "GET", "/v1/topics/orders/partitions/0/records?offset=-1", nil, nil, 400, "invalid_request", "offset"},
		{"non-numeric offset", "GET", "/v1/topics/orders/partitions/0/records?offset=ten", nil, nil, 400, "invalid_request", "offset"},
		{"offset after log end", "GET", "/v1/topics/orders/partitions/0/records?offset=2", nil, nil, 416, "offset_out_of_range", ""},
		{"two start positions", "GET", "/v1/topics/orders/partitions/0/records?offset=0&tail=3", nil, nil, 400, "invalid_request", "tail"},
		{"wait too long", "GET", "/v1/topics/orders/partitions/0/records?wait_ms=60000", nil, nil, 400, "invalid_request", "wait_ms"},
		{"bad format", "GET", "/v1/topics/orders/partitions/0/records?format=xml", nil, nil, 400, "invalid_request", "format"},
		{"bad from", "GET", "/v1/topics/orders/partitions/0/records?from=middle", nil, nil, 400, "invalid_request", "from"},
		{"consume unknown topic", "GET", "/v1/topics/nope/partitions/0/records", nil, nil, 404, "unknown_topic", ""},
		{"consume unknown partition", "GET", "/v1/topics/orders/partitions/7/records", nil, nil, 404, "unknown_partition", ""},
		{"empty topic name", "POST", "/v1/topics", `{"name":""}`, nil, 400, "invalid_request", "name"},
		{"long topic name", "POST", "/v1/topics", `{"name":"` + long + `"}`, nil, 400, "invalid_request", "name"},
		{"bad characters", "POST", "/v1/topics", `{"name":"a/b"}`, nil, 400, "invalid_request", "name"},
		{"dot", "POST", "/v1/topics", `{"name":"."}`, nil, 400, "invalid_request", "name"},
		{"dot dot", "POST", "/v1/topics", `{"name":".."}`, nil, 400, "invalid_request", "name"},
		{"zero partitions", "POST", "/v1/topics", `{"name":"z","partitions":0}`, nil, 400, "invalid_request", "partitions"},
		{"bad config", "POST", "/v1/topics", `{"name":"z","config":{"cleanup_policy":"shred"}}`, nil, 400, "invalid_request", "config.cleanup_policy"},
		{"unknown Kafka config", "POST", "/v1/topics", `{"name":"z","config":{"retention.minutes":1}}`, nil, 400, "invalid_request", "config.retention.minutes"},
		{"Kafka config not a number", "POST", "/v1/topics", `{"name":"z","config":{"retention.ms":"abc"}}`, nil, 400, "invalid_request", "config.retention_ms"},
		{"Kafka config as object", "POST", "/v1/topics", `{"name":"z","config":{"retention.ms":{}}}`, nil, 400, "invalid_request", "config.retention.ms"},
		{"duplicate key beside a Kafka name", "POST", "/v1/topics", `{"name":"z","config":{"retention.ms":1,"segment_bytes":1048576,"segment_bytes":2097152}}`, nil, 400, "invalid_request", "config.segment_bytes"},
		{"both names of a setting", "POST", "/v1/topics", `{"name":"z","config":{"retention.ms":1,"retention_ms":2}}`, nil, 400, "invalid_request", "config.retention.ms"},
		{"bad Kafka config in a patch", "PATCH", "/v1/topics/orders", `{"partitions":4,"config":{"message.timestamp.type":"Now"}}`, nil, 400, "invalid_request", "config.timestamp_type"},
		{"partition decrease", "PATCH", "/v1/topics/orders", `{"partitions":1}`, nil, 400, "invalid_request", "partitions"},
		{"bad config with growth", "PATCH", "/v1/topics/orders", `{"partitions":4,"config":{"retention_ms":-9}}`, nil, 400, "invalid_request", "config.retention_ms"},
		{"bad topic in path", "GET", "/v1/topics/bad%20name", nil, nil, 400, "invalid_request", "topic"},
		{"fetch without partitions", "POST", "/v1/fetch", `{"partitions":[]}`, nil, 400, "invalid_request", "partitions"},
		{"fetch negative offset", "POST", "/v1/fetch", `{"partitions":[{"topic":"orders","partition":0,"offset":-1}]}`, nil, 400, "invalid_request", "partitions[0]"},
		{"offsets bad timestamp", "GET", "/v1/topics/orders/partitions/0/offsets?timestamp=x", nil, nil, 400, "invalid_request", "timestamp"},
		{"offsets bad spec", "GET", "/v1/topics/orders/partitions/0/offsets?spec=middle", nil, nil, 400, "invalid_request", "spec"},
		{"list bad limit", "GET", "/v1/topics?limit=0", nil, nil, 400, "invalid_request", "limit"},
		// Duplicate keys would let the last one win: refused at any depth.
		{"duplicate key in a record", "POST", "/v1/topics/orders/records", `{"records":[{"value":"a","value":"b"}]}`, nil, 400, "invalid_request", "records[0].value"},
		{"duplicate records key", "POST", "/v1/topics/orders/records", `{"records":[{"value":"a"}],"records":[{"value":"b"}]}`, nil, 400, "invalid_request", "records"},
		{"duplicate header field", "POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v","headers":[{"name":"a","name":"b"}]}]}`, nil, 400, "invalid_request", "records[0].headers[0].name"},
		{"duplicate config key", "POST", "/v1/topics", `{"name":"z","config":{"retention_ms":1,"retention_ms":2}}`, nil, 400, "invalid_request", "config.retention_ms"},
		{"duplicate key in a patch", "PATCH", "/v1/topics/orders", `{"partitions":3,"partitions":2}`, nil, 400, "invalid_request", "partitions"},
		// A body must be an object; null is not one.
		{"null produce body", "POST", "/v1/topics/orders/partitions/0/records", `null`, nil, 400, "invalid_request", ""},
		{"null patch body", "PATCH", "/v1/topics/orders", `null`, nil, 400, "invalid_request", ""},
		{"array body", "POST", "/v1/topics", `[]`, nil, 400, "invalid_request", ""},
		// Compressed bodies: gzip and zstd are read, others refused, and the
		// size cap holds after decompression.
		{"unknown content encoding", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v"}]}`, []string{"Content-Encoding", "br"}, 415, "unsupported_media_type", ""},
		{"gzip that is not", "POST", "/v1/topics/orders/records", `{"records":[{"value":"v"}]}`, []string{"Content-Encoding", "gzip"}, 400, "invalid_request", ""},
		{"gzip bomb", "POST", "/v1/topics/orders/records", bomb, []string{"Content-Encoding", "gzip"}, 413, "body_too_large", ""},
	}
	before := e.snapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			m := e.want(e.do(c.method, c.path, c.body, c.headers...), c.status, c.code)
			if c.field != "" && m["field"] != c.field {
				t.Fatalf("field %v, want %s", m["field"], c.field)
			}
			if m["retryable"] != false || m["side_effect"] != "none" || m["detail"] == "" {
				t.Fatalf("problem %v", m)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("bad input changed state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	e.t = t
	// The 416 carries both bounds; the 412 carries the log end.
	m := e.want(e.do("GET", "/v1/topics/orders/partitions/0/records?offset=5", nil), 416, "offset_out_of_range")
	if m["log_start_offset"] != 0.0 || m["log_end_offset"] != 1.0 {
		t.Fatalf("416 bounds %v", m)
	}
	m = e.want(e.do("POST", "/v1/topics/orders/partitions/0/records", `{"records":[{"value":"v"}],"expected_offset":0}`), 412, "expected_offset_mismatch")
	if m["log_end_offset"] != 1.0 {
		t.Fatalf("412 log end %v", m)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.createTopic("bin", 1)
	bin := []byte{0x00, 0xff, 0xfe, 0x80, 'a'}
	b64 := base64.StdEncoding.EncodeToString(bin)
	body := map[string]any{"records": []any{
		map[string]any{"key_b64": b64, "value_b64": b64, "headers": []any{map[string]any{"name": "h1", "value": "text"}, map[string]any{"name": "h1", "value": nil}, map[string]any{"name": "bin", "value_b64": b64}}},
		map[string]any{"key": "k", "value": nil},                                   // tombstone
		map[string]any{"value": ""},                                                // empty, not null
		map[string]any{"key": "j", "value_json": map[string]any{"a": []int{1, 2}}}, // JSON document
		map[string]any{"value": "line\nbreak \"quoted\" \u2028 é"},
	}}
	e.want(e.do("POST", "/v1/topics/bin/partitions/0/records", body), 200)
	got := e.want(e.do("GET", "/v1/topics/bin/partitions/0/records?format=json", nil), 200)
	recs := got["records"].([]any)
	r0 := recs[0].(map[string]any)
	if r0["key_b64"] != b64 || r0["value_b64"] != b64 {
		t.Fatalf("binary record %v", r0)
	}
	h := r0["headers"].([]any)
	if len(h) != 3 || h[0].(map[string]any)["value"] != "text" || h[1].(map[string]any)["value"] != nil || h[2].(map[string]any)["value_b64"] != b64 {
		t.Fatalf("headers (order, null, binary) %v", h)
	}
	r1 := recs[1].(map[string]any)
	if v, ok := r1["value"]; !ok || v != nil || r1["key"] != "k" {
		t.Fatalf("tombstone %v", r1)
	}
	if v, ok := recs[2].(map[string]any)["value"]; !ok || v != "" {
		t.Fatalf("empty value %v", recs[2])
	}
	if vj := recs[3].(map[string]any)["value_json"]; fmt.Sprint(vj) != "map[a:[1 2]]" {
		t.Fatalf("value_json %v", recs[3])
	}
	if v := recs[4].(map[string]any)["value"]; v != "line\nbreak \"quoted\" \u2028 é" {
		t.Fatalf("escaped text %q", v)
	}
	// format=base64 is binary for everything; auto renders JSON as text.
	got = e.want(e.do("GET", "/v1/topics/bin/partitions/0/records?format=base64&max_records=1", nil), 200)
	if got["records"].([]any)[0].(map[string]any)["value_b64"] != b64 || got["next_offset"] != 1.0 {
		t.Fatalf("base64 format %v", got)
	}
	got = e.want(e.do("GET", "/v1/topics/bin/partitions/0/records?offset=3&max_records=1", nil), 200)
	if got["records"].([]any)[0].(map[string]any)["value"] != `{"a":[1,2]}` {
		t.Fatalf("auto format of JSON %v", got)
	}
}

func TestTopicProduceAndPartialFailure(t *testing.T) {
	e := newEnv(t)
	e.createTopic("events", 3)
	recs := []any{}
	for i := range 30 {
		recs = append(recs, map[string]any{"key": fmt.Sprintf("user-%d", i), "value": fmt.Sprint(i)})
	}
	res := e.want(e.do("POST", "/v1/topics/events/records", map[string]any{"records": recs}, "Idempotency-Key", "batch-1"), 200)
	if res["failed_record_count"] != 0.0 || len(res["results"].([]any)) != 30 {
		t.Fatalf("%v", res)
	}
	again := e.want(e.do("POST", "/v1/topics/events/records", map[string]any{"records": recs}, "Idempotency-Key", "batch-1"), 200)
	if fmt.Sprint(stripTimestamps(again)) != fmt.Sprint(stripTimestamps(res)) {
		t.Fatalf("retry with the same Idempotency-Key:\n%v\nfirst:\n%v", again, res)
	}
	// The same key with different records: refused, nothing stored.
	changed := append(slices.Clone(recs[:29]), map[string]any{"key": "user-29", "value": "x"}, map[string]any{"key": "user-29", "value": "y"})
	e.want(e.do("POST", "/v1/topics/events/records", map[string]any{"records": changed}, "Idempotency-Key", "batch-1"), 422, "idempotency_key_reused")
	countStored := func() float64 {
		total := 0.0
		for _, p := range e.want(e.do("GET", "/v1/topics/events/partitions", nil), 200)["partitions"].([]any) {
			total += p.(map[string]any)["log_end_offset"].(float64)
		}
		return total
	}
	if n := countStored(); n != 30 {
		t.Fatalf("%v records stored, want 30", n)
	}
	// A partial failure: an idempotent producer whose sequence on one
	// partition has a gap. That partition fails, the other commits (207).
	pid := e.want(e.do("POST", "/v1/producers", nil), 201)["producer_id"]
	two := []any{map[string]any{"value": "a", "partition": 0}, map[string]any{"value": "b", "partition": 1}}
	partial := e.want(e.do("POST", "/v1/topics/events/records", map[string]any{"records": two, "producer": map[string]any{"id": pid, "epoch": 0}, "base_sequences": map[string]any{"0": 0, "1": 5}}), 207)
	res0 := partial["results"].([]any)[0].(map[string]any)
	res1 := partial["results"].([]any)[1].(map[string]any)
	if partial["failed_record_count"] != 1.0 || res0["offset"] == nil || res1["error"].(map[string]any)["code"] != "out_of_order_sequence" {
		t.Fatalf("partial failure: %v", partial)
	}
	if n := countStored(); n != 31 {
		t.Fatalf("%v records stored, want 31", n)
	}
}

// TestCompressedBodies: gzip and zstd request bodies are read as JSON.
func TestCompressedBodies(t *testing.T) {
	e := newEnv(t)
	e.createTopic("zip", 1)
	body := []byte(`{"records":[{"value":"packed"}]}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(body)
	_ = zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(body, nil)
	for name, b := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs} {
		res := e.want(e.do("POST", "/v1/topics/zip/records", b, "Content-Encoding", name), 200)
		if res["failed_record_count"] != 0.0 {
			t.Fatalf("%s: %v", name, res)
		}
	}
	got := e.want(e.do("GET", "/v1/topics/zip/partitions/0/records", nil), 200)
	if len(got["records"].([]any)) != 2 {
		t.Fatalf("read back %v", got)
	}
}

func stripTimestamps(m map[string]any) []any {
	var out []any
	for _, r := range m["results"].([]any) {
		rr := r.(map[string]any)
		out = append(out, []any{rr["partition"], rr["offset"]})
	}
	return out
}

func TestPartitionProduceIdempotent(t *testing.T) {
	e := newEnv(t)
	e.createTopic("p", 2)
	body := map[string]any{"records": []any{map[string]any{"value": "a"}, map[string]any{"value": "b"}}, "producer": map[string]any{"id": 42, "epoch": 0, "base_sequence": 0}, "expected_offset": 0}
	first := e.want(e.do("POST", "/v1/topics/p/partitions/1/records", body), 200)
	if first["base_offset"] != 0.0 || first["last_offset"] != 1.0 || first["log_end_offset"] != 2.0 || first["duplicate"] != false {
		t.Fatalf("%v", first)
	}
	again := e.want(e.do("POST", "/v1/topics/p/partitions/1/records", body), 200)
	if again["duplicate"] != true || again["base_offset"] != 0.0 {
		t.Fatalf("retry %v", again)
	}
	prod := e.want(e.do("POST", "/v1/producers", nil), 201)
	if prod["producer_id"].(float64) < 1000 {
		t.Fatalf("producer %v", prod)
	}
	e.want(e.do("POST", "/v1/topics/p/partitions/0/fence", map[string]any{"token": "w1"}), 204)
	e.want(e.do("POST", "/v1/topics/p/partitions/0/records", map[string]any{"records": []any{map[string]any{"value": "x"}}, "fencing_token": "w2"}), 409, "fenced")
	e.want(e.do("POST", "/v1/topics/p/partitions/0/records", map[string]any{"records": []any{map[string]any{"value": "x"}}, "fencing_token": "w1"}), 200)
	e.want(e.do("POST", "/v1/topics/p/partitions/0/fence", map[string]any{"token": "w3", "current": "nope"}), 409, "fenced")
}

func produceN(e *env, topic string, p, n int, ts ...int64) {
	e.t.Helper()
	var recs []any
	for i := range n {
		r := map[string]any{"value": fmt.Sprintf("v%d", i)}
		if len(ts) > 0 {
			r["timestamp"] = ts[0] + int64(i)
		}
		recs = append(recs, r)
	}
	e.want(e.do("POST", fmt.Sprintf("/v1/topics/%s/partitions/%d/records", topic, p), map[string]any{"records": recs}), 200)
}

func TestConsumeStartPositions(t *testing.T) {
	e := newEnv(t)
	e.createTopic("c", 1)
	produceN(e, "c", 0, 10, 1_700_000_000_000)
	for _, c := range []struct {
		query string
		first float64
		n     int
	}{
		{"", 0, 10}, {"?from=earliest", 0, 10}, {"?from=latest", -1, 0}, {"?tail=3", 7, 3}, {"?tail=50", 0, 10},
		{"?offset=4&max_records=2", 4, 2}, {"?timestamp=1700000000005", 5, 5}, {"?timestamp=1800000000000", -1, 0},
	} {
		got := e.want(e.do("GET", "/v1/topics/c/partitions/0/records"+c.query, nil), 200)
		recs := got["records"].([]any)
		if len(recs) != c.n || (c.n > 0 && recs[0].(map[string]any)["offset"] != c.first) {
			t.Fatalf("%q: %d records %v", c.query, len(recs), got)
		}
	}
	off := e.want(e.do("GET", "/v1/topics/c/partitions/0/offsets?timestamp=1700000000003", nil), 200)
	if off["offset"] != 3.0 || off["timestamp"] != 1700000000003.0 {
		t.Fatalf("offset for timestamp %v", off)
	}
	off = e.want(e.do("GET", "/v1/topics/c/partitions/0/offsets?spec=earliest", nil), 200)
	if off["offset"] != 0.0 || off["log_end_offset"] != 10.0 {
		t.Fatalf("earliest %v", off)
	}
	p := e.want(e.do("GET", "/v1/topics/c/partitions/0", nil), 200)
	if p["log_end_offset"] != 10.0 || p["bytes"].(float64) <= 0 {
		t.Fatalf("partition %v", p)
	}
}

func TestNDJSONAndHeaders(t *testing.T) {
	e := newEnv(t)
	e.createTopic("n", 1)
	produceN(e, "n", 0, 5)
	r := e.do("GET", "/v1/topics/n/partitions/0/records?offset=1&max_records=3", nil, "Accept", "application/x-ndjson")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if len(lines) != 3 || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("ndjson %q", r.body)
	}
	if r.header.Get("Streambed-Next-Offset") != "4" || r.header.Get("Streambed-Log-End-Offset") != "5" || r.header.Get("Streambed-Log-Start-Offset") != "0" {
		t.Fatalf("headers %v", r.header)
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t)
	e.createTopic("lp", 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		resp, err := http.Post(e.srv.URL+"/v1/topics/lp/partitions/0/records", "application/json", strings.NewReader(`{"records":[{"value":"late"}]}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	start := time.Now()
	got := e.want(e.do("GET", "/v1/topics/lp/partitions/0/records?wait_ms=10000", nil), 200)
	if len(got["records"].([]any)) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("long poll: %v after %v", got, time.Since(start))
	}
	start = time.Now()
	got = e.want(e.do("GET", "/v1/topics/lp/partitions/0/records?offset=1&wait_ms=300", nil), 200)
	if len(got["records"].([]any)) != 0 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("empty long poll returned after %v: %v", time.Since(start), got)
	}
}

func TestSSE(t *testing.T) {
	e := newEnv(t)
	e.createTopic("s", 1)
	produceN(e, "s", 0, 3)
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/topics/s/partitions/0/records?offset=1", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	events := readEvents(t, sc, 2)
	if events[0].id != "2" || events[1].id != "3" || !strings.Contains(events[1].data, `"offset":2`) {
		t.Fatalf("events %+v", events)
	}
	produceN(e, "s", 0, 1)
	ev := readEvents(t, sc, 1)
	if ev[0].id != "4" || ev[0].event != "record" {
		t.Fatalf("live event %+v", ev)
	}
	// Idle streams get pings.
	if !waitForLine(sc, ": ping", 3*time.Second) {
		t.Fatal("no ping on an idle stream")
	}
	resp.Body.Close()

	// Resume with Last-Event-ID, which wins over the query.
	req, _ = http.NewRequest("GET", e.srv.URL+"/v1/topics/s/partitions/0/records?offset=0", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "3")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	ev = readEvents(t, bufio.NewScanner(resp2.Body), 1)
	if ev[0].id != "4" {
		t.Fatalf("resumed at %+v", ev)
	}
	// A stream that cannot start is a plain problem.
	e.want(e.do("GET", "/v1/topics/s/partitions/0/records?offset=99", nil, "Accept", "text/event-stream"), 416, "offset_out_of_range")
}

type sseEvent struct{ id, event, data string }

func readEvents(t *testing.T, sc *bufio.Scanner, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
			var m map[string]any
			if err := json.Unmarshal([]byte(cur.data), &m); err != nil {
				t.Fatalf("event data is not JSON: %q", cur.data)
			}
		}
	}
	if len(out) < n {
		t.Fatalf("got %d events, want %d", len(out), n)
	}
	return out
}

func waitForLine(sc *bufio.Scanner, want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && sc.Scan() {
		if sc.Text() == want {
			return true
		}
	}
	return false
}

func TestFetchMany(t *testing.T) {
	e := newEnv(t)
	e.createTopic("a", 2)
	e.createTopic("b", 1)
	produceN(e, "a", 0, 4)
	produceN(e, "a", 1, 2)
	produceN(e, "b", 0, 3)
	got := e.want(e.do("POST", "/v1/fetch", map[string]any{"partitions": []any{
		map[string]any{"topic": "a", "partition": 0, "offset": 1},
		map[string]any{"topic": "a", "partition": 1, "offset": 0},
		map[string]any{"topic": "nope", "partition": 0, "offset": 0},
		map[string]any{"topic": "b", "partition": 0, "offset": 9},
		map[string]any{"topic": "b", "partition": 0, "offset": 3},
	}, "max_records": 4}), 200)
	res := got["results"].([]any)
	r0, r1 := res[0].(map[string]any), res[1].(map[string]any)
	if len(r0["records"].([]any)) != 3 || r0["next_offset"] != 4.0 || len(r1["records"].([]any)) != 1 {
		t.Fatalf("budget shared in order: %v %v", r0, r1)
	}
	if res[2].(map[string]any)["error"].(map[string]any)["code"] != "unknown_topic" {
		t.Fatalf("unknown topic result %v", res[2])
	}
	r3 := res[3].(map[string]any)
	if r3["error"].(map[string]any)["code"] != "offset_out_of_range" || r3["log_end_offset"] != 3.0 {
		t.Fatalf("out of range result %v", r3)
	}
	// Past the budget, a partition still reports its bounds.
	if r4 := res[4].(map[string]any); len(r4["records"].([]any)) != 0 || r4["log_end_offset"] != 3.0 || r4["next_offset"] != 3.0 {
		t.Fatalf("partition past the budget %v", r4)
	}
	// Long poll across partitions wakes on any of them.
	go func() {
		time.Sleep(150 * time.Millisecond)
		resp, err := http.Post(e.srv.URL+"/v1/topics/b/partitions/0/records", "application/json", strings.NewReader(`{"records":[{"value":"x"}]}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	got = e.want(e.do("POST", "/v1/fetch", map[string]any{"partitions": []any{
		map[string]any{"topic": "a", "partition": 0, "offset": 4},
		map[string]any{"topic": "b", "partition": 0, "offset": 3},
	}, "wait_ms": 5000}), 200)
	if recs := got["results"].([]any)[1].(map[string]any)["records"]; len(recs.([]any)) != 1 {
		t.Fatalf("long-polled fetch %v", got)
	}
}

func TestIdempotentTopicProduce(t *testing.T) {
	e := newEnv(t)
	e.createTopic("ip", 3)
	body := map[string]any{
		"records":        []any{map[string]any{"value": "a", "partition": 0}, map[string]any{"value": "b", "partition": 2}, map[string]any{"value": "c", "partition": 0}},
		"producer":       map[string]any{"id": 500, "epoch": 0},
		"base_sequences": map[string]any{"0": 0, "2": 0},
	}
	first := e.want(e.do("POST", "/v1/topics/ip/records", body), 200)
	again := e.want(e.do("POST", "/v1/topics/ip/records", body), 200)
	if fmt.Sprint(stripTimestamps(first)) != fmt.Sprint(stripTimestamps(again)) {
		t.Fatalf("retry %v, first %v", again, first)
	}
	next := map[string]any{"records": []any{map[string]any{"value": "d", "partition": 0}}, "producer": map[string]any{"id": 500, "epoch": 0}, "base_sequences": map[string]any{"0": 2}}
	res := e.want(e.do("POST", "/v1/topics/ip/records", next), 200)
	if res["results"].([]any)[0].(map[string]any)["offset"] != 2.0 {
		t.Fatalf("next batch %v", res)
	}
	gap := map[string]any{"records": []any{map[string]any{"value": "e", "partition": 0}}, "producer": map[string]any{"id": 500, "epoch": 0}, "base_sequences": map[string]any{"0": 9}}
	e.want(e.do("POST", "/v1/topics/ip/records", gap), 409, "out_of_order_sequence")
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"records": []any{map[string]any{"value": "x"}}, "producer": map[string]any{"id": 1, "epoch": 0}, "base_sequences": map[string]any{}}, "records[0].partition"},
		{map[string]any{"records": []any{map[string]any{"value": "x", "partition": 1}}, "producer": map[string]any{"id": 1, "epoch": 0}, "base_sequences": map[string]any{}}, "base_sequences"},
		{map[string]any{"records": []any{map[string]any{"value": "x", "partition": 1}}, "producer": map[string]any{"id": 1, "epoch": 0}, "base_sequences": map[string]any{"1": 0, "2": 0}}, "base_sequences"},
		{map[string]any{"records": []any{map[string]any{"value": "x", "partition": 1}}, "base_sequences": map[string]any{"1": 0}}, "base_sequences"},
		{map[string]any{"records": []any{map[string]any{"value": "x", "partition": 1}}, "producer": map[string]any{"id": 1, "epoch": 0}, "base_sequences": map[string]any{"one": 0}}, "base_sequences"},
	} {
		e.want(e.do("POST", "/v1/topics/ip/records", c.body), 400, "invalid_request", c.field)
	}
}
