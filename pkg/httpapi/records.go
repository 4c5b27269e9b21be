package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/segments"
)

func fieldProblem(field, format string, args ...any) *api.Problem {
	p := api.NewProblem(api.CodeInvalidRequest, field+": "+fmt.Sprintf(format, args...))
	p.Field = field
	return p
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
