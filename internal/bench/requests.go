package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/streambed/streambed/internal/faults"
)

// RequestsConfig is a produce load of plain HTTP requests, as an HTTP user
// (or a Kafka client, one ProduceRequest each) sends them: each client
// posts requests of a fixed number of records and waits for the answer.
// No SDK batching.
type RequestsConfig struct {
	URL         string
	Topic       string // created with Partitions partitions
	Partitions  int32
	Clients     int
	Records     int // per request
	RecordBytes int
	Duration    time.Duration
	// Bucket and Table, when the endpoint runs in this process, count the
	// objects and metadata commits the load caused.
	Bucket *faults.Bucket
	Table  *faults.Table
}

// RequestsResult is what a request load measured.
type RequestsResult struct {
	Clients        int     `json:"clients"`
	Records        int     `json:"records_per_request"`
	Requests       int64   `json:"requests"`
	Failed         int64   `json:"failed_requests"`
	FirstError     string  `json:"first_error,omitempty"`
	RecordsPerSec  float64 `json:"records_per_s"`
	MBPerSec       float64 `json:"mb_per_s"` // record values
	Latency        Latency `json:"latency"`
	Objects        int64   `json:"objects,omitempty"`         // PUTs
	ObjectBytes    float64 `json:"object_bytes,omitempty"`    // their average size
	MetadataWrites int64   `json:"metadata_writes,omitempty"` // commit transactions and other writes
	// Per 1,000 requests: the cost model's inputs.
	ObjectsPer1000 float64 `json:"objects_per_1000_requests,omitempty"`
	WritesPer1000  float64 `json:"metadata_writes_per_1000_requests,omitempty"`
}

// RunRequests runs a request load.
func RunRequests(ctx context.Context, cfg RequestsConfig) (*RequestsResult, error) {
	if cfg.Clients < 1 || cfg.Records < 1 || cfg.RecordBytes < 1 || cfg.Duration <= 0 || cfg.Partitions < 1 {
		return nil, fmt.Errorf("bench: need clients, records, record bytes, partitions >= 1 and a duration")
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients}, Timeout: time.Minute}
	if cfg.Topic == "" {
		cfg.Topic = fmt.Sprintf("requests-%d", time.Now().UnixNano())
	}
	body, _ := json.Marshal(map[string]any{"name": cfg.Topic, "partitions": cfg.Partitions})
	if err := post(ctx, hc, cfg.URL+"/v1/topics", body); err != nil {
		return nil, fmt.Errorf("create topic: %w", err)
	}
	// One body per client, reused: printable values, as JSON strings.
	bodies := make([][]byte, cfg.Clients)
	for c := range bodies {
		rnd := rand.New(rand.NewPCG(uint64(c), 7))
		type rec struct {
			Value string `json:"value"`
		}
		recs := make([]rec, cfg.Records)
		for i := range recs {
			v := make([]byte, cfg.RecordBytes)
			for j := range v {
				v[j] = 'a' + byte(rnd.IntN(26))
			}
			recs[i].Value = string(v)
		}
		bodies[c], _ = json.Marshal(map[string]any{"records": recs})
	}
	var puts, putBytes, writes int64
	if cfg.Bucket != nil {
		puts, putBytes, writes = cfg.Bucket.Counts().Put, cfg.Bucket.Counts().PutBytes, cfg.Table.Counts().Write
	}
	url := cfg.URL + "/v1/topics/" + cfg.Topic + "/records"
	run := timed(ctx, cfg.Clients, cfg.Duration, func(c, _ int) error { return post(ctx, hc, url, bodies[c]) }, false)
	elapsed := run.elapsed.Seconds()
	n := run.ok
	res := &RequestsResult{Clients: cfg.Clients, Records: cfg.Records, Requests: n, Failed: run.failed,
		RecordsPerSec: float64(n) * float64(cfg.Records) / elapsed,
		MBPerSec:      float64(n) * float64(cfg.Records*cfg.RecordBytes) / elapsed / 1e6,
		Latency:       percentiles(run.lat)}
	if run.err != nil {
		res.FirstError = run.err.Error()
	}
	if cfg.Bucket != nil && n > 0 {
		res.Objects = cfg.Bucket.Counts().Put - puts
		if res.Objects > 0 {
			res.ObjectBytes = float64(cfg.Bucket.Counts().PutBytes-putBytes) / float64(res.Objects)
		}
		res.MetadataWrites = cfg.Table.Counts().Write - writes
		res.ObjectsPer1000 = float64(res.Objects) * 1000 / float64(n)
		res.WritesPer1000 = float64(res.MetadataWrites) * 1000 / float64(n)
	}
	return res, nil
}

func post(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// WriteText prints the result for people.
func (r *RequestsResult) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%d clients, %d records per request: %.0f records/s (%.1f MB/s), latency p50 %.1f ms p99 %.1f ms, %d requests (%d failed)\n",
		r.Clients, r.Records, r.RecordsPerSec, r.MBPerSec, r.Latency.P50, r.Latency.P99, r.Requests, r.Failed)
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(w, "first failure: %s\n", r.FirstError)
	}
	if err == nil && r.Requests > 0 && (r.Objects > 0 || r.MetadataWrites > 0) {
		_, err = fmt.Fprintf(w, "per 1,000 requests: %.1f objects, %.1f metadata writes\n", r.ObjectsPer1000, r.WritesPer1000)
	}
	return err
}
