package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
)

// produceBody1000 is a topic-level produce request of 1000 records with
// 1 KiB values, as text or base64.
func produceBody1000(b64 bool) []byte {
	value := make([]byte, 768) // 1 KiB as base64
	_, _ = rand.Read(value)
	recs := make([]map[string]any, 1000)
	for i := range recs {
		if b64 {
			recs[i] = map[string]any{"key": fmt.Sprintf("user-%d", i), "value_b64": base64.StdEncoding.EncodeToString(value)}
		} else {
			recs[i] = map[string]any{"key": fmt.Sprintf("user-%d", i), "value": base64.StdEncoding.EncodeToString(value), "headers": []any{map[string]any{"name": "source", "value": "bench"}}}
		}
	}
	body, _ := json.Marshal(map[string]any{"records": recs})
	return body
}

// BenchmarkDecodeProduce measures decoding a 1000-record produce body into
// broker records (strict validation included).
func BenchmarkDecodeProduce(b *testing.B) {
	for _, b64 := range []bool{false, true} {
		body := produceBody1000(b64)
		b.Run(fmt.Sprintf("value_b64=%v", b64), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, p := decodeProduceForBench(body); p != nil {
					b.Fatal(p)
				}
			}
		})
	}
}
