package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/segments"
)

// Confluent REST Proxy v3 produce compatibility (shared/specs/
// confluent-kafka-rest-v3-openapi.yaml): POST .../records (one record, or
// a concatenated-JSON stream of them) and .../records:batch, with BINARY,
// JSON and STRING data. Schema-registry types are refused. Errors use
// Confluent's shape: {"error_code": ..., "message": ...}.

type v3Data struct {
	Type json.RawMessage `json:"type"`
	Data json.RawMessage `json:"data"`
	// Schema-registry fields: accepted in the shape, refused if used.
	Subject             *string         `json:"subject"`
	SubjectNameStrategy *string         `json:"subject_name_strategy"`
	SchemaID            *int            `json:"schema_id"`
	SchemaVersion       *int            `json:"schema_version"`
	Schema              *string         `json:"schema"`
	Extra               json.RawMessage `json:"-"`
}

type v3Header struct {
	Name  string  `json:"name"`
	Value *string `json:"value"` // base64
}

type v3Record struct {
	ID          string     `json:"id,omitempty"` // records:batch only
	PartitionID *int32     `json:"partition_id"`
	Headers     []v3Header `json:"headers"`
	Key         *v3Data    `json:"key"`
	Value       *v3Data    `json:"value"`
	Timestamp   *string    `json:"timestamp"`
}

type v3DataOut struct {
	Size int64  `json:"size"`
	Type string `json:"type"`
}

type v3ProduceResponse struct {
	ErrorCode   int        `json:"error_code"`
	Message     string     `json:"message,omitempty"`
	ClusterID   string     `json:"cluster_id,omitempty"`
	TopicName   string     `json:"topic_name,omitempty"`
	PartitionID *int32     `json:"partition_id,omitempty"`
	Offset      *int64     `json:"offset,omitempty"`
	Timestamp   *string    `json:"timestamp,omitempty"`
	Key         *v3DataOut `json:"key"`
	Value       *v3DataOut `json:"value"`
}

type v3Error struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// v3ErrorCode follows Confluent's convention: the HTTP status, or a
// five-digit refinement of it for not-found resources.
func v3ErrorCode(p *api.Problem) int {
	switch p.Code {
	case api.CodeUnknownTopic:
		return 40401
	case api.CodeUnknownPartition:
		return 40402
	}
	return p.Status
}

func (s *Server) v3Fail(w http.ResponseWriter, r *http.Request, p *api.Problem) {
	if p.Status >= 500 {
		s.log.Warn("request failed", "request_id", requestID(r), "code", p.Code, "detail", p.Detail)
	}
	s.writeJSON(w, p.Status, v3Error{ErrorCode: v3ErrorCode(p), Message: p.Detail})
}

func (s *Server) v3Clusters(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]any{
		"kind":     "KafkaClusterList",
		"metadata": map[string]any{"self": "/v3/clusters"},
		"data":     []any{map[string]any{"kind": "KafkaCluster", "cluster_id": s.opts.ClusterID}},
	})
}

// v3Bytes decodes key or value data by its type.
func v3Bytes(d *v3Data, field string) ([]byte, string, *api.Problem) {
	if d == nil {
		return nil, "", nil
	}
	if d.Subject != nil || d.SubjectNameStrategy != nil || d.SchemaID != nil || d.SchemaVersion != nil || d.Schema != nil {
		return nil, "", fieldProblem(field, "schema registry serialization is not supported; send BINARY, JSON or STRING data")
	}
	typ := "JSON" // Confluent's default when no schema is given
	if len(d.Type) > 0 && string(d.Type) != "null" {
		if err := json.Unmarshal(d.Type, &typ); err != nil {
			return nil, "", fieldProblem(field+".type", "must be a string")
		}
	}
	if len(d.Data) == 0 || string(d.Data) == "null" {
		return nil, typ, nil
	}
	switch typ {
	case "BINARY":
		var s string
		if err := json.Unmarshal(d.Data, &s); err != nil {
			return nil, "", fieldProblem(field+".data", "BINARY data must be a base64 string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, "", fieldProblem(field+".data", "invalid base64: %v", err)
		}
		return b, typ, nil
	case "STRING":
		var s string
		if err := json.Unmarshal(d.Data, &s); err != nil {
			return nil, "", fieldProblem(field+".data", "STRING data must be a string")
		}
		return []byte(s), typ, nil
	case "JSON":
		var buf bytes.Buffer
		if err := json.Compact(&buf, d.Data); err != nil {
			return nil, "", fieldProblem(field+".data", "%v", err)
		}
		return buf.Bytes(), typ, nil
	case "AVRO", "JSONSCHEMA", "PROTOBUF":
		return nil, "", fieldProblem(field+".type", "%s needs a schema registry, which Streambed does not have; send BINARY, JSON or STRING", typ)
	}
	return nil, "", fieldProblem(field+".type", "%q: use BINARY, JSON or STRING", typ)
}

type v3Decoded struct {
	rec        broker.ProduceRecord
	keyType    string
	valueType  string
	hasKey     bool
	hasValue   bool
	keyBytes   int64
	valueBytes int64
}

func decodeV3(in v3Record, field string) (v3Decoded, *api.Problem) {
	d := v3Decoded{rec: broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp}, Partition: broker.NoPartition}}
	if in.PartitionID != nil {
		if *in.PartitionID < 0 {
			return d, fieldProblem(field+".partition_id", "%d is negative", *in.PartitionID)
		}
		d.rec.Partition = *in.PartitionID
	}
	var p *api.Problem
	if d.rec.Key, d.keyType, p = v3Bytes(in.Key, field+".key"); p != nil {
		return d, p
	}
	if d.rec.Value, d.valueType, p = v3Bytes(in.Value, field+".value"); p != nil {
		return d, p
	}
	d.hasKey, d.hasValue = in.Key != nil, in.Value != nil
	d.keyBytes, d.valueBytes = int64(len(d.rec.Key)), int64(len(d.rec.Value))
	if in.Timestamp != nil {
		ts, err := time.Parse(time.RFC3339Nano, *in.Timestamp)
		if err != nil {
			return d, fieldProblem(field+".timestamp", "%q is not an RFC 3339 date-time", *in.Timestamp)
		}
		d.rec.Timestamp = ts.UnixMilli()
	}
	for i, h := range in.Headers {
		hdr := segments.Header{Key: h.Name}
		if h.Value != nil {
			b, err := base64.StdEncoding.DecodeString(*h.Value)
			if err != nil {
				return d, fieldProblem(fmt.Sprintf("%s.headers[%d].value", field, i), "invalid base64: %v", err)
			}
			hdr.Value = b
		}
		d.rec.Headers = append(d.rec.Headers, hdr)
	}
	return d, nil
}

func (d *v3Decoded) response(cluster, topic string, res broker.RecordResult) v3ProduceResponse {
	ts := time.UnixMilli(res.Timestamp).UTC().Format(time.RFC3339Nano)
	out := v3ProduceResponse{ErrorCode: http.StatusOK, ClusterID: cluster, TopicName: topic, PartitionID: &res.Partition, Offset: &res.Offset, Timestamp: &ts}
	if d.hasKey {
		out.Key = &v3DataOut{Size: d.keyBytes, Type: d.keyType}
	}
	if d.hasValue {
		out.Value = &v3DataOut{Size: d.valueBytes, Type: d.valueType}
	}
	return out
}

// v3Produce accepts one record or a stream of concatenated JSON records
// and answers one delivery report per record, in order.
func (s *Server) v3Produce(w http.ResponseWriter, r *http.Request) {
	cluster, topic := r.PathValue("cluster"), r.PathValue("topic")
	if p := checkJSONContentType(r); p != nil {
		s.v3Fail(w, r, p)
		return
	}
	body, p := s.readBody(w, r)
	if p != nil {
		if p.Detail == "request body is empty" {
			p = api.NewProblem(api.CodeInvalidRequest, "Payload error. Request body is empty. Data is required.")
			p.Status = http.StatusUnprocessableEntity
		}
		s.v3Fail(w, r, p)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var decoded []v3Decoded
	for i := 0; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			s.v3Fail(w, r, api.NewProblem(api.CodeInvalidJSON, "malformed JSON: "+err.Error()))
			return
		}
		var in v3Record
		if p := decodeStrict(raw, &in, ""); p != nil {
			s.v3Fail(w, r, p)
			return
		}
		d, p := decodeV3(in, "")
		if p != nil {
			s.v3Fail(w, r, p)
			return
		}
		decoded = append(decoded, d)
	}
	recs := make([]broker.ProduceRecord, len(decoded))
	for i := range decoded {
		recs[i] = decoded[i].rec
	}
	results, err := s.b.Produce(r.Context(), topic, recs, broker.ProduceOptions{})
	if err != nil {
		s.v3Fail(w, r, problemFor(err, true))
		return
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	for i, res := range results {
		if res.Err != nil {
			p := problemFor(res.Err, true)
			_ = enc.Encode(v3ProduceResponse{ErrorCode: v3ErrorCode(p), Message: p.Detail})
			continue
		}
		_ = enc.Encode(decoded[i].response(cluster, topic, res))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out.Bytes())
}

type v3BatchRequest struct {
	Entries []v3Record `json:"entries"`
}

type v3BatchSuccess struct {
	ID string `json:"id"`
	v3ProduceResponse
}

type v3BatchFailure struct {
	ID        string `json:"id"`
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message,omitempty"`
}

func (s *Server) v3ProduceBatch(w http.ResponseWriter, r *http.Request) {
	cluster, topic := r.PathValue("cluster"), r.PathValue("topic")
	var in v3BatchRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.v3Fail(w, r, p)
		return
	}
	if len(in.Entries) == 0 {
		s.v3Fail(w, r, fieldProblem("entries", "at least one entry is required"))
		return
	}
	ids := map[string]bool{}
	decoded := make([]v3Decoded, len(in.Entries))
	recs := make([]broker.ProduceRecord, len(in.Entries))
	for i, e := range in.Entries {
		field := fmt.Sprintf("entries[%d]", i)
		if e.ID == "" || len(e.ID) > 80 || ids[e.ID] {
			s.v3Fail(w, r, fieldProblem(field+".id", "ids must be 1-80 characters and unique"))
			return
		}
		ids[e.ID] = true
		d, p := decodeV3(e, field)
		if p != nil {
			s.v3Fail(w, r, p)
			return
		}
		decoded[i], recs[i] = d, d.rec
	}
	results, err := s.b.Produce(r.Context(), topic, recs, broker.ProduceOptions{})
	if err != nil {
		s.v3Fail(w, r, problemFor(err, true))
		return
	}
	out := struct {
		Successes []v3BatchSuccess `json:"successes"`
		Failures  []v3BatchFailure `json:"failures"`
	}{Successes: []v3BatchSuccess{}, Failures: []v3BatchFailure{}}
	for i, res := range results {
		id := in.Entries[i].ID
		if res.Err != nil {
			p := problemFor(res.Err, true)
			out.Failures = append(out.Failures, v3BatchFailure{ID: id, ErrorCode: v3ErrorCode(p), Message: p.Detail})
			continue
		}
		resp := decoded[i].response(cluster, topic, res)
		resp.ErrorCode = 0
		out.Successes = append(out.Successes, v3BatchSuccess{ID: id, v3ProduceResponse: resp})
	}
	s.writeJSON(w, http.StatusMultiStatus, out)
}
