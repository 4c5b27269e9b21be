package bench

import (
	"context"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

func TestPercentiles(t *testing.T) {
	ns := make([]int64, 100)
	for i := range ns {
		ns[i] = int64(100-i) * 1e6 // 100ms .. 1ms, unsorted
	}
	l := percentiles(ns)
	if l.Count != 100 || l.P50 != 51 || l.P90 != 91 || l.P99 != 100 || l.Max != 100 {
		t.Fatalf("%+v", l)
	}
	if (percentiles(nil) != Latency{}) {
		t.Fatal("empty")
	}
}

func TestCostArithmetic(t *testing.T) {
	p, err := LoadPrices("")
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{ProducedBytes: 1e9, HTTP: HTTPCounts{ProduceRequests: 1000, ProduceSeconds: 100, APIGWUnits: 2000}}
	oc := faults.BucketCounts{Put: 1000, Get: 1000}
	mc := faults.TableCounts{WriteOps: 5000, TransactionalOps: 4000, ItemsRead: 10000}
	c := costOf(r, oc, mc, p)
	for _, x := range []struct {
		name      string
		got, want float64
	}{
		{"s3", c.S3Requests, 1000*0.005/1000 + 1000*0.0004/1000},
		{"dynamodb", c.DynamoDB, (1000+8000)*0.625/1e6 + 10000*0.125/1e6},
		{"lambda", c.Lambda, 1000*0.20/1e6 + 100*1*0.0000133334},
		{"apigw", c.APIGateway, 2000 * 1.0 / 1e6},
	} {
		if math.Abs(x.got-x.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", x.name, x.got, x.want)
		}
	}
	if c.Total != c.S3Requests+c.DynamoDB+c.Lambda+c.APIGateway {
		t.Error("total")
	}
}

func TestLoadPricesRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"zero.json": `{"s3_put_per_1000": 0}`, "bad.json": `{`} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := LoadPrices(path); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestRunSmall runs a one-second benchmark in process and checks that
// every counter the report relies on moved.
func TestRunSmall(t *testing.T) {
	bucket, table := faults.WrapBucket(membucket.New(), nil), faults.WrapTable(memtable.New(), nil)
	b := broker.New(offsets.New(table), bucket, broker.Config{})
	srv := httptest.NewServer(httpapi.New(b, httpapi.Options{}).Handler())
	defer srv.Close()
	defer b.Drain()
	p, _ := LoadPrices("")
	res, err := Run(context.Background(), Config{URL: srv.URL, Producers: 2, Consumers: 1, Partitions: 2, RecordBytes: 256,
		BatchBytes: 64 << 10, Linger: 5 * time.Millisecond, Duration: time.Second, Rate: 2000, Bucket: bucket, Table: table, Prices: p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Produced == 0 || res.Consumed != res.Produced || res.Failed != 0 {
		t.Fatalf("produced %d consumed %d failed %d", res.Produced, res.Consumed, res.Failed)
	}
	if res.ProduceLatency.Count != res.Produced || res.EndToEnd.Count != res.Consumed {
		t.Fatalf("latency counts %d/%d", res.ProduceLatency.Count, res.EndToEnd.Count)
	}
	if res.Objects.Put == 0 || res.Metadata.Write == 0 || res.PerGB.PutsPerGBWritten == 0 || res.Cost.Total <= 0 {
		t.Fatalf("counters: %+v %+v %+v", res.Objects, res.Metadata, res.Cost)
	}
	bl, err := RunBaseline(context.Background(), membucket.New(), memtable.New(), 4096, 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	res.CompareWith(bl)
	if res.Overhead.ThroughputOverRawPut <= 0 {
		t.Fatalf("overhead %+v", res.Overhead)
	}
	if err := res.WriteText(&discard{}); err != nil {
		t.Fatal(err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestRunRequestsSmall: a short request load on an in-process broker
// counts its requests, objects and commits.
func TestRunRequestsSmall(t *testing.T) {
	bucket, table := faults.WrapBucket(membucket.New(), nil), faults.WrapTable(memtable.New(), nil)
	b := broker.New(offsets.New(table), bucket, broker.Config{})
	srv := httptest.NewServer(httpapi.New(b, httpapi.Options{}).Handler())
	defer srv.Close()
	defer b.Drain()
	res, err := RunRequests(context.Background(), RequestsConfig{URL: srv.URL, Partitions: 2, Clients: 4, Records: 3, RecordBytes: 50, Duration: 300 * time.Millisecond, Bucket: bucket, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Failed != 0 || res.RecordsPerSec <= 0 || res.Latency.P50 <= 0 {
		t.Fatalf("%+v", res)
	}
	if res.Objects == 0 || res.Objects > res.Requests || res.ObjectBytes <= 0 || res.ObjectsPer1000 > 1000 {
		t.Fatalf("objects %d (%.0f bytes each) for %d requests", res.Objects, res.ObjectBytes, res.Requests)
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil || !strings.Contains(text.String(), "4 clients, 3 records per request") {
		t.Fatalf("%q %v", text.String(), err)
	}
	if _, err := RunRequests(context.Background(), RequestsConfig{URL: srv.URL, Clients: 0}); err == nil {
		t.Fatal("zero clients accepted")
	}
}
