package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/segments"
)

// decodeB64 accepts standard or URL-safe base64, padded or not.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not valid base64")
}

func fieldProblem(field, format string, args ...any) *api.Problem {
	p := api.NewProblem(api.CodeInvalidRequest, field+": "+fmt.Sprintf(format, args...))
	p.Field = field
	return p
}

// decodeRecord turns one request record into a broker record. field is its
// path ("records[3]"); allowPartition permits a per-record partition.
func decodeRecord(raw json.RawMessage, field string, allowPartition bool) (broker.ProduceRecord, *api.Problem) {
	var in api.Record
	out := broker.ProduceRecord{Record: segments.Record{Timestamp: broker.NoTimestamp}, Partition: broker.NoPartition}
	if p := decodeStrict(raw, &in, field); p != nil {
		return out, p
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return out, fieldProblem(field, "a record must be an object")
	}
	if in.Offset != nil {
		return out, fieldProblem(field+".offset", "offsets are assigned by the broker")
	}
	switch {
	case in.Partition == nil:
	case !allowPartition:
		return out, fieldProblem(field+".partition", "the partition is set by the URL")
	case *in.Partition < 0:
		return out, fieldProblem(field+".partition", "%d is negative", *in.Partition)
	default:
		out.Partition = *in.Partition
	}
	if in.Timestamp != nil {
		if *in.Timestamp < 0 {
			return out, fieldProblem(field+".timestamp", "%d is negative (epoch milliseconds); omit it to use the broker's clock", *in.Timestamp)
		}
		out.Timestamp = *in.Timestamp
	}
	if in.Key != nil && in.KeyB64 != nil {
		return out, fieldProblem(field+".key", "give key or key_b64, not both")
	}
	switch {
	case in.Key != nil:
		out.Key = []byte(*in.Key)
	case in.KeyB64 != nil:
		b, err := decodeB64(*in.KeyB64)
		if err != nil {
			return out, fieldProblem(field+".key_b64", "%v", err)
		}
		out.Key = b
	}
	n := 0
	for _, set := range []bool{in.Value != nil, in.ValueB64 != nil, in.ValueJSON != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return out, fieldProblem(field+".value", "give one of value, value_b64 and value_json")
	}
	switch {
	case in.Value != nil:
		out.Value = []byte(*in.Value)
	case in.ValueB64 != nil:
		b, err := decodeB64(*in.ValueB64)
		if err != nil {
			return out, fieldProblem(field+".value_b64", "%v", err)
		}
		out.Value = b
	case in.ValueJSON != nil && !bytes.Equal(bytes.TrimSpace(in.ValueJSON), []byte("null")):
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.ValueJSON); err != nil {
			return out, fieldProblem(field+".value_json", "%v", err)
		}
		out.Value = buf.Bytes()
	}
	for i, h := range in.Headers {
		hf := fmt.Sprintf("%s.headers[%d]", field, i)
		if h.Value != nil && h.ValueB64 != nil {
			return out, fieldProblem(hf+".value", "give value or value_b64, not both")
		}
		hdr := segments.Header{Key: h.Name}
		switch {
		case h.Value != nil:
			hdr.Value = []byte(*h.Value)
		case h.ValueB64 != nil:
			b, err := decodeB64(*h.ValueB64)
			if err != nil {
				return out, fieldProblem(hf+".value_b64", "%v", err)
			}
			hdr.Value = b
		}
		out.Headers = append(out.Headers, hdr)
	}
	return out, nil
}

// Format says how record bytes are rendered in responses.
type Format int

const (
	// FormatAuto: text when valid UTF-8, else base64 (lossless).
	FormatAuto Format = iota
	// FormatJSON: values that are JSON documents as value_json, the rest as auto.
	FormatJSON
	// FormatBase64: always key_b64 / value_b64.
	FormatBase64
)

func parseFormat(s string) (Format, error) {
	switch s {
	case "", "auto", "text":
		return FormatAuto, nil
	case "json":
		return FormatJSON, nil
	case "base64", "binary":
		return FormatBase64, nil
	}
	return 0, fmt.Errorf("format %q: use auto, json or base64", s)
}

// appendRecord appends a record's JSON form. It is written by hand: it is
// the hot path of every fetch.
func appendRecord(b []byte, topic string, partition int32, r *segments.Record, f Format) []byte {
	b = append(b, '{')
	if topic != "" {
		b = append(b, `"topic":`...)
		b = appendString(b, topic)
		b = append(b, ',')
	}
	b = append(b, `"partition":`...)
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, r.Timestamp, 10)
	b = appendBytesField(b, "key", r.Key, f == FormatBase64, false)
	b = appendBytesField(b, "value", r.Value, f == FormatBase64, f == FormatJSON)
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, h := range r.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, h.Key)
			b = appendBytesField(b, "value", h.Value, f == FormatBase64, false)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendBytesField(b []byte, name string, v []byte, forceB64, asJSON bool) []byte {
	b = append(b, ',', '"')
	switch {
	case v == nil:
		b = append(b, name...)
		return append(b, `":null`...)
	case asJSON && json.Valid(v):
		b = append(b, name...)
		b = append(b, `_json":`...)
		return append(b, v...)
	case !forceB64 && utf8.Valid(v):
		b = append(b, name...)
		b = append(b, `":`...)
		return appendString(b, string(v))
	}
	b = append(b, name...)
	b = append(b, `_b64":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s (valid UTF-8) as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' { // valid JSON, but break JavaScript
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
