package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// benchServer is the full HTTP stack over real storage.
func benchServer(b *testing.B, backend string) string {
	b.Helper()
	var table offsets.Table
	var bucket segments.Bucket
	switch backend {
	case "embedded":
		table, bucket = testenv.Embedded(b, b.TempDir())
	case "minio+moto":
		table, bucket, _ = testenv.MinIOMoto(b, "bench", 0)
	}
	br := broker.New(offsets.New(table), bucket, broker.Config{})
	srv := httptest.NewServer(httpapi.New(br, httpapi.Options{}).Handler())
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkHTTP measures produce and consume over HTTP with 1 KiB records
// (random bytes, sent as value_b64) in requests of 1, 100 and 1000
// records. Each op is one produce request; after the loop the records are
// read back in 5000-record fetches. Reported: produce records/s and MB/s
// (record payload), produce latency p50/p99, consume records/s and MB/s.
func BenchmarkHTTP(b *testing.B) {
	for _, backend := range []string{"embedded", "minio+moto"} {
		for _, batch := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				base := benchServer(b, backend)
				client := &http.Client{}
				post(b, client, base+"/v1/topics", map[string]any{"name": "bench", "partitions": 1})
				value := make([]byte, 1024)
				_, _ = rand.Read(value)
				recs := make([]any, batch)
				for i := range recs {
					recs[i] = map[string]any{"value_b64": base64.StdEncoding.EncodeToString(value)}
				}
				body, _ := json.Marshal(map[string]any{"records": recs})
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				start := time.Now()
				for b.Loop() {
					t0 := time.Now()
					post(b, client, base+"/v1/topics/bench/partitions/0/records", body)
					lat = append(lat, time.Since(t0))
				}
				elapsed := time.Since(start)
				b.StopTimer()
				n := b.N * batch
				b.ReportMetric(float64(n)/elapsed.Seconds(), "produce-rec/s")
				b.ReportMetric(float64(n)*1024/1e6/elapsed.Seconds(), "produce-MB/s")
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")

				start = time.Now()
				read := 0
				for off := 0; off < n; {
					resp, err := client.Get(fmt.Sprintf("%s/v1/topics/bench/partitions/0/records?offset=%d&max_records=5000&format=base64", base, off))
					if err != nil {
						b.Fatal(err)
					}
					var out struct {
						Records    []json.RawMessage `json:"records"`
						NextOffset int               `json:"next_offset"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
					read += len(out.Records)
					off = out.NextOffset
				}
				elapsed = time.Since(start)
				if read != n {
					b.Fatalf("read %d of %d records", read, n)
				}
				b.ReportMetric(float64(n)/elapsed.Seconds(), "consume-rec/s")
				b.ReportMetric(float64(n)*1024/1e6/elapsed.Seconds(), "consume-MB/s")
			})
		}
	}
}

func post(b *testing.B, c *http.Client, url string, body any) {
	b.Helper()
	data, ok := body.([]byte)
	if !ok {
		data, _ = json.Marshal(body)
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, out)
	}
}
