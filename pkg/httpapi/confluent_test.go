package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestConfluentV3Produce(t *testing.T) {
	e := newEnv(t)
	e.createTopic("v3", 2)
	for _, prefix := range []string{"/v3", "/kafka/v3"} {
		r := e.do("POST", prefix+"/clusters/lkc-123/topics/v3/records", map[string]any{
			"partition_id": 1,
			"key":          map[string]any{"type": "STRING", "data": "user-1"},
			"value":        map[string]any{"type": "JSON", "data": map[string]any{"n": 1}},
			"headers":      []any{map[string]any{"name": "trace", "value": base64.StdEncoding.EncodeToString([]byte("t1"))}},
			"timestamp":    "2026-11-24T10:00:00.123Z",
		})
		if r.status != 200 {
			t.Fatalf("%s: %d %s", prefix, r.status, r.body)
		}
		var out map[string]any
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		if out["error_code"] != 200.0 || out["cluster_id"] != "lkc-123" || out["topic_name"] != "v3" || out["partition_id"] != 1.0 || out["timestamp"] != "2026-11-24T10:00:00.123Z" {
			t.Fatalf("%s: %v", prefix, out)
		}
		if k := out["key"].(map[string]any); k["type"] != "STRING" || k["size"] != 6.0 {
			t.Fatalf("key %v", k)
		}
	}
	got := e.want(e.do("GET", "/v1/topics/v3/partitions/1/records?format=json", nil), 200)
	rec := got["records"].([]any)[0].(map[string]any)
	if rec["key"] != "user-1" || rec["value_json"].(map[string]any)["n"] != 1.0 || rec["timestamp"] != 1795514400123.0 {
		t.Fatalf("stored %v", rec)
	}
	if h := rec["headers"].([]any)[0].(map[string]any); h["name"] != "trace" || h["value"] != "t1" {
		t.Fatalf("header %v", h)
	}

	// Concatenated JSON: one delivery report per record, in order. BINARY data.
	stream := `{"value":{"type":"BINARY","data":"AAEC"}}{"key":{"type":"STRING","data":"k"},"value":{"type":"STRING","data":"s"}}`
	r := e.do("POST", "/v3/clusters/c/topics/v3/records", stream)
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	n := 0
	for dec.More() {
		var rep map[string]any
		if err := dec.Decode(&rep); err != nil || rep["error_code"] != 200.0 {
			t.Fatalf("report %d: %v %v", n, rep, err)
		}
		n++
	}
	if r.status != 200 || n != 2 {
		t.Fatalf("%d reports, status %d: %s", n, r.status, r.body)
	}
}

func TestConfluentV3Batch(t *testing.T) {
	e := newEnv(t)
	e.createTopic("batch", 1)
	r := e.do("POST", "/v3/clusters/c/topics/batch/records:batch", map[string]any{"entries": []any{
		map[string]any{"id": "a", "value": map[string]any{"type": "STRING", "data": "one"}},
		map[string]any{"id": "b", "value": map[string]any{"type": "JSON", "data": []int{1, 2}}},
	}})
	if r.status != 207 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var out struct {
		Successes []map[string]any `json:"successes"`
		Failures  []map[string]any `json:"failures"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Successes) != 2 || len(out.Failures) != 0 || out.Successes[0]["id"] != "a" || out.Successes[1]["offset"] != 1.0 {
		t.Fatalf("%s", r.body)
	}
}

func TestConfluentV3Errors(t *testing.T) {
	e := newEnv(t)
	e.createTopic("err", 1)
	cases := []struct {
		path, body string
		status     int
		code       float64
	}{
		{"/v3/clusters/c/topics/missing/records", `{"value":{"type":"STRING","data":"x"}}`, 404, 40401},
		{"/v3/clusters/c/topics/err/records", `{"partition_id":5,"value":{"type":"STRING","data":"x"}}`, 404, 40402},
		{"/v3/clusters/c/topics/err/records", ``, 422, 422},
		{"/v3/clusters/c/topics/err/records", `{"value":{"type":"AVRO","data":{}}}`, 400, 400},
		{"/v3/clusters/c/topics/err/records", `{"value":{"schema_id":3,"data":{}}}`, 400, 400},
		{"/v3/clusters/c/topics/err/records", `{"value":{"type":"BINARY","data":"***"}}`, 400, 400},
		{"/v3/clusters/c/topics/err/records", `{"value":`, 400, 400},
		{"/v3/clusters/c/topics/err/records", `null`, 400, 400},
		{"/v3/clusters/c/topics/err/records", `{"value":{"type":"STRING","data":"a"},"value":{"type":"STRING","data":"b"}}`, 400, 400},
		{"/v3/clusters/c/topics/err/records:batch", `{"entries":[{"id":"a"},{"id":"a"}]}`, 400, 400},
	}
	for _, c := range cases {
		r := e.do("POST", c.path, c.body)
		var out map[string]any
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("%s %q: %s", c.path, c.body, r.body)
		}
		if r.status != c.status || out["error_code"] != c.code || out["message"] == "" {
			t.Errorf("%s %q: %d %v, want %d %v", c.path, c.body, r.status, out, c.status, c.code)
		}
	}
	if got := e.want(e.do("GET", "/v1/topics/err/partitions", nil), 200); got["partitions"].([]any)[0].(map[string]any)["log_end_offset"] != 0.0 {
		t.Fatal("refused v3 requests appended records")
	}
}
