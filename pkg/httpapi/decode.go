package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/streambed/streambed/internal/strictjson"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/segments"
)

// produceBody is a decoded produce request, of either route.
type produceBody struct {
	records []broker.ProduceRecord
	// producer is set for idempotent producers; baseSequence for the
	// partition-level route, baseSequences (by partition) for the topic one.
	producer       *api.ProducerEpoch
	baseSequence   int32
	baseSequences  map[int32]int32
	expectedOffset *int64
	fencingToken   *string
}

// decodeProduce reads a produce body in one pass: every field checked
// (unknown and duplicate keys refused, errors naming the record and
// field), record bytes taken from the body without copies where no
// escapes or base64 stand in the way. partitionLevel selects the shape of
// POST .../partitions/{p}/records.
func decodeProduce(body []byte, partitionLevel bool, maxRecords int) (produceBody, *api.Problem) {
	var out produceBody
	r := strictjson.NewReader(body)
	if k := r.Peek(); k != strictjson.Object {
		return out, problemOf(&strictjson.Error{Msg: fmt.Sprintf("the body must be a JSON object, not %s", k), Syntax: k == strictjson.Invalid})
	}
	sawRecords := false
	err := r.Object(func(key []byte) error {
		switch string(key) {
		case "records":
			sawRecords = true
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			out.records = make([]broker.ProduceRecord, 0, 16)
			return r.Array(func(i int) error {
				if i >= maxRecords {
					return errTooManyRecords
				}
				rec, err := readRecord(r, !partitionLevel)
				out.records = append(out.records, rec)
				return err
			})
		case "producer":
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			out.producer = &api.ProducerEpoch{}
			return r.Object(func(k []byte) error {
				var err error
				var n int64
				switch string(k) {
				case "id":
					out.producer.ID, err = r.Int(64)
				case "epoch":
					n, err = r.Int(16)
					out.producer.Epoch = int16(n)
				case "base_sequence":
					if !partitionLevel {
						return r.Errorf("unknown field (the topic-level produce takes base_sequences)")
					}
					n, err = r.Int(32)
					out.baseSequence = int32(n)
				default:
					return r.Errorf("unknown field")
				}
				return err
			})
		case "base_sequences":
			if partitionLevel {
				return r.Errorf("unknown field (the partition-level produce takes producer.base_sequence)")
			}
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			out.baseSequences = map[int32]int32{}
			return r.Object(func(k []byte) error {
				p, ok := parsePartitionKey(k)
				if !ok {
					return &strictjson.Error{Path: "base_sequences", Msg: fmt.Sprintf("key %q is not a partition number", k)}
				}
				seq, err := r.Int(32)
				out.baseSequences[p] = int32(seq)
				return err
			})
		case "expected_offset":
			if !partitionLevel {
				return r.Errorf("unknown field")
			}
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			n, err := r.Int(64)
			out.expectedOffset = &n
			return err
		case "fencing_token":
			if !partitionLevel {
				return r.Errorf("unknown field")
			}
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			s, err := r.String()
			out.fencingToken = &s
			return err
		}
		return r.Errorf("unknown field")
	})
	if err == nil {
		err = r.End()
	}
	if errors.Is(err, errTooManyRecords) {
		p := api.NewProblem(api.CodeTooManyRecords, fmt.Sprintf("more than %d records, the limit per request", maxRecords))
		p.Field = "records"
		return out, p
	}
	if err != nil {
		return out, problemOf(err)
	}
	if !sawRecords || out.records == nil {
		return out, fieldProblem("records", "is required: an array of records")
	}
	return out, nil
}

var errTooManyRecords = errors.New("too many records")

func parsePartitionKey(k []byte) (int32, bool) {
	if len(k) == 0 || len(k) > 10 {
		return 0, false
	}
	n := int64(0)
	for _, c := range k {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > 1<<31-1 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	return int32(n), true
}

// readRecord reads one request record.
func readRecord(r *strictjson.Reader, allowPartition bool) (broker.ProduceRecord, error) {
	out := broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp}, Partition: broker.NoPartition}
	if r.Peek() != strictjson.Object {
		if r.Peek() == strictjson.Null {
			return out, r.Errorf("a record must be an object, not null")
		}
	}
	keys, values := 0, 0
	at := r.Path()
	conflict := func(field, msg string) error {
		return &strictjson.Error{Path: at + "." + field, Msg: msg}
	}
	err := r.Object(func(k []byte) error {
		switch f := string(k); f {
		case "key", "key_b64":
			keys++
			if keys > 1 {
				return conflict("key", "give key or key_b64, not both")
			}
			b, err := readBytes(r, f == "key_b64")
			out.Key = b
			return err
		case "value", "value_b64", "value_json":
			values++
			if values > 1 {
				return conflict("value", "give one of value, value_b64 and value_json")
			}
			if f == "value_json" {
				raw, err := r.Raw()
				if err != nil || bytes.Equal(raw, []byte("null")) {
					return err
				}
				var buf bytes.Buffer
				buf.Grow(len(raw))
				if err := json.Compact(&buf, raw); err != nil {
					return r.Errorf("%v", err)
				}
				out.Value = buf.Bytes()
				return nil
			}
			b, err := readBytes(r, f == "value_b64")
			out.Value = b
			return err
		case "headers":
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			return r.Array(func(int) error {
				h, err := readHeader(r)
				out.Headers = append(out.Headers, h)
				return err
			})
		case "timestamp":
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			ts, err := r.Int(64)
			if err == nil && ts < 0 {
				return r.Errorf("%d is negative (epoch milliseconds); omit it to use the broker's clock", ts)
			}
			out.Timestamp = ts
			return err
		case "partition":
			if !allowPartition {
				return r.Errorf("the partition is set by the URL")
			}
			if r.Peek() == strictjson.Null {
				return r.Null()
			}
			p, err := r.Int(32)
			if err == nil && p < 0 {
				return r.Errorf("%d is negative", p)
			}
			out.Partition = int32(p)
			return err
		case "offset":
			return r.Errorf("offsets are assigned by the broker")
		}
		return r.Errorf("unknown field")
	})
	return out, err
}

func readHeader(r *strictjson.Reader) (segments.Header, error) {
	var h segments.Header
	if r.Peek() == strictjson.Null {
		return h, r.Errorf("a header must be an object, not null")
	}
	values := 0
	at := r.Path()
	err := r.Object(func(k []byte) error {
		switch f := string(k); f {
		case "name":
			s, err := r.String()
			h.Key = s
			return err
		case "value", "value_b64":
			values++
			if values > 1 {
				return &strictjson.Error{Path: at + ".value", Msg: "give value or value_b64, not both"}
			}
			b, err := readBytes(r, f == "value_b64")
			h.Value = b
			return err
		}
		return r.Errorf("unknown field")
	})
	return h, err
}

// readBytes reads a string field as bytes (nil for null), base64-decoded
// when b64 (standard or URL-safe alphabet, padded or not).
func readBytes(r *strictjson.Reader, b64 bool) ([]byte, error) {
	if r.Peek() == strictjson.Null {
		return nil, r.Null()
	}
	s, err := r.StringBytes()
	if err != nil {
		return nil, err
	}
	if !b64 {
		return s, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		dst := make([]byte, enc.DecodedLen(len(s)))
		if n, err := enc.Decode(dst, s); err == nil {
			return dst[:n], nil
		}
	}
	return nil, r.Errorf("not valid base64")
}

// problemOf turns a strictjson error into a problem naming its field.
func problemOf(err error) *api.Problem {
	var e *strictjson.Error
	if !errors.As(err, &e) {
		return api.NewProblem(api.CodeInvalidJSON, "malformed JSON: "+err.Error())
	}
	code := api.CodeInvalidRequest
	detail := e.Msg
	if e.Path != "" {
		detail = e.Path + ": " + e.Msg
	}
	if e.Syntax {
		code = api.CodeInvalidJSON
		detail = fmt.Sprintf("malformed JSON at byte %d: %s", e.Offset, detail)
	}
	p := api.NewProblem(code, detail)
	p.Field = e.Path
	return p
}
