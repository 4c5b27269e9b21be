package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/streambed/streambed/pkg/api"
)

// FuzzDecodeProduce feeds arbitrary bodies to the produce decoder of both
// routes: it may refuse them (with a problem naming a code), never panic,
// and what it accepts is valid JSON with at most the record limit, whose
// records each carry a key, value or header or are explicit nulls.
func FuzzDecodeProduce(f *testing.F) {
	for _, s := range []string{
		`{"records":[{"key":"k","value":"v","headers":[{"name":"h","value_b64":"AA=="}],"timestamp":5,"partition":1}]}`,
		`{"records":[{"value_json":{"a":[1,2]}}],"producer":{"id":1,"epoch":0},"base_sequences":{"0":3}}`,
		`{"records":[{"value":"a"}],"producer":{"id":7,"epoch":1,"base_sequence":2},"expected_offset":4,"fencing_token":"t"}`,
		`{"records":[{"value":"a","value":"b"}]}`,
		`{"records":null}`,
		`null`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, partitionLevel bool) {
		in, p := decodeProduce(body, partitionLevel, 5)
		if p != nil {
			if _, ok := api.Catalog[p.Code]; !ok || p.Detail == "" {
				t.Fatalf("problem without a known code or detail: %+v", p)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if len(in.records) > 5 { // empty is the broker's to refuse
			t.Fatalf("accepted %d records", len(in.records))
		}
		for _, r := range in.records {
			if partitionLevel && r.Partition != -1 {
				t.Fatalf("partition-level record with a partition: %+v", r)
			}
		}
	})
}

// FuzzTopicConfigNames feeds arbitrary topic bodies to the reader of
// Kafka-named settings: it refuses them with a problem naming the field,
// or passes the body on; what it takes out is a setting Kafka names, and
// what it passes on no longer has it.
func FuzzTopicConfigNames(f *testing.F) {
	for _, s := range []string{
		`{"name":"t","config":{"retention.ms":"5","retention_bytes":7}}`,
		`{"name":"t","config":{"cleanup.policy":"compact","min.insync.replicas":2}}`,
		`{"config":{"retention.ms":1,"retention_ms":2}}`,
		`{"config":{"no.such":1}}`,
		`{"config":[1]}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rest, kafka, p := splitKafkaConfig(body)
		if p != nil {
			if p.Field == "" || p.Detail == "" {
				t.Fatalf("problem without a field or detail: %+v", p)
			}
			return
		}
		if len(kafka) == 0 {
			if string(rest) != string(body) {
				t.Fatalf("body changed without a Kafka name taken out: %q -> %q", body, rest)
			}
			return
		}
		var top struct{ Config map[string]json.RawMessage }
		if err := json.Unmarshal(rest, &top); err != nil {
			t.Fatalf("passed on unreadable %q: %v", rest, err)
		}
		for _, k := range kafka {
			if _, left := top.Config[k.name]; left {
				t.Fatalf("%s taken out and left in %q", k.name, rest)
			}
		}
	})
}
