// Package bench drives a Streambed endpoint with producers and group
// consumers and reports what users pay for: latency percentiles,
// throughput, the storage requests the load caused per GB, and a cost per
// GB at list prices — beside a baseline of the raw storage underneath, so
// every figure states the broker's overhead. `streambed bench` is its CLI.
package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/client"
)

// Config is one benchmark run.
type Config struct {
	URL         string // the endpoint
	Producers   int
	Consumers   int
	Partitions  int32
	RecordBytes int
	BatchBytes  int
	Linger      time.Duration
	Duration    time.Duration
	// Rate caps records per second over all producers (0: as fast as the
	// endpoint takes them, which measures throughput; latency then
	// includes queueing in the producers' buffers).
	Rate  int
	Topic string
	// Bucket and Table, when the endpoint runs in this process, count the
	// storage requests (nil for a remote endpoint: counts are unknown).
	Bucket *faults.Bucket
	Table  *faults.Table
	Prices Prices
	Log    io.Writer // progress lines (may be nil)
}

// Latency percentiles in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func percentiles(ns []int64) Latency {
	if len(ns) == 0 {
		return Latency{}
	}
	slices.Sort(ns)
	at := func(q float64) float64 { return float64(ns[min(len(ns)-1, int(q*float64(len(ns))))]) / 1e6 }
	return Latency{Count: int64(len(ns)), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(ns[len(ns)-1]) / 1e6}
}

// HTTPCounts are the API requests the clients made, by kind.
type HTTPCounts struct {
	ProduceRequests int64   `json:"produce_requests"`
	ProduceBytes    int64   `json:"produce_request_bytes"`
	ProduceSeconds  float64 `json:"produce_request_seconds"`
	ConsumeRequests int64   `json:"consume_requests"`
	ConsumeBytes    int64   `json:"consume_response_bytes"`
	ConsumeSeconds  float64 `json:"consume_request_seconds"`
	OtherRequests   int64   `json:"other_requests"`
	// APIGWUnits counts requests in API Gateway's 512 KiB metering units.
	APIGWUnits int64 `json:"apigw_units"`
}

// Result is one run's report.
type Result struct {
	Config struct {
		Producers   int     `json:"producers"`
		Consumers   int     `json:"consumers"`
		Partitions  int32   `json:"partitions"`
		RecordBytes int     `json:"record_bytes"`
		BatchBytes  int     `json:"batch_bytes"`
		LingerMs    int64   `json:"linger_ms"`
		Rate        int     `json:"rate_records_per_s,omitempty"`
		Seconds     float64 `json:"seconds"`
		Endpoint    string  `json:"endpoint"`
	} `json:"config"`
	Produced       int64                `json:"records_produced"`
	ProducedBytes  int64                `json:"bytes_produced"`
	Failed         int64                `json:"records_failed"`
	Consumed       int64                `json:"records_consumed"`
	ConsumedBytes  int64                `json:"bytes_consumed"`
	ProduceMBps    float64              `json:"produce_mb_per_s"`
	ProduceRecPerS float64              `json:"produce_records_per_s"`
	ConsumeMBps    float64              `json:"consume_mb_per_s"`
	ProduceLatency Latency              `json:"produce_latency"`
	EndToEnd       Latency              `json:"end_to_end_latency"`
	HTTP           HTTPCounts           `json:"http"`
	Objects        *faults.BucketCounts `json:"object_store,omitempty"`
	Metadata       *faults.TableCounts  `json:"metadata,omitempty"`
	PerGB          *PerGB               `json:"storage_requests_per_gb,omitempty"`
	Cost           *Cost                `json:"cost,omitempty"`
	Baseline       *Baseline            `json:"baseline,omitempty"`
	Overhead       *Overhead            `json:"overhead,omitempty"`
}

// PerGB are storage requests per GB written (PUTs, metadata writes) and
// per GB read (GETs, metadata reads).
type PerGB struct {
	PutsPerGBWritten          float64 `json:"object_puts_per_gb_written"`
	GetsPerGBRead             float64 `json:"object_gets_per_gb_read"`
	ListsPerGB                float64 `json:"object_lists_per_gb"`
	MetadataWritesPerGB       float64 `json:"metadata_write_calls_per_gb"`
	MetadataWriteUnitsPerGB   float64 `json:"metadata_write_units_per_gb"`
	MetadataReadUnitsPerGB    float64 `json:"metadata_read_units_per_gb"`
	TransactionItemsPerGB     float64 `json:"transaction_items_per_gb"`
	ProduceRequestsPerGB      float64 `json:"produce_requests_per_gb"`
	ConsumeRequestsPerGB      float64 `json:"consume_requests_per_gb"`
	AverageObjectBytes        float64 `json:"average_object_bytes"`
	AverageProduceRequestByte float64 `json:"average_produce_request_bytes"`
}

// httpCounter counts API requests by kind through the clients' transport.
type httpCounter struct {
	next                                               http.RoundTripper
	unit                                               int64
	pReq, pBytes, pNs, cReq, cBytes, cNs, other, units atomic.Int64
}

func (h *httpCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := h.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	// Read the body here so the time and size include it (Lambda bills
	// until the response is sent).
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	ns := time.Since(start).Nanoseconds()
	in, out := max(req.ContentLength, 0), int64(len(body))
	h.units.Add(max(1, (max(in, out)+h.unit-1)/h.unit))
	switch p := req.URL.Path; {
	case req.Method == "POST" && strings.HasSuffix(p, "/records"):
		h.pReq.Add(1)
		h.pBytes.Add(in)
		h.pNs.Add(ns)
	case strings.HasSuffix(p, "/poll") || (req.Method == "GET" && strings.HasSuffix(p, "/records")) || p == "/v1/fetch":
		h.cReq.Add(1)
		h.cBytes.Add(out)
		h.cNs.Add(ns)
	default:
		h.other.Add(1)
	}
	return resp, rerr
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Producers < 1 || cfg.Partitions < 1 || cfg.RecordBytes < 8 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("bench: need producers >= 1, partitions >= 1, record size >= 8 bytes and a duration")
	}
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", a...)
		}
	}
	hc := &httpCounter{next: http.DefaultTransport, unit: int64(cfg.Prices.APIGWUnitBytes)}
	cl, err := client.New(cfg.URL, client.WithHTTPClient(&http.Client{Transport: hc, Timeout: 2 * time.Minute}))
	if err != nil {
		return nil, err
	}
	if cfg.Topic == "" {
		cfg.Topic = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	if _, err := cl.CreateTopic(ctx, cfg.Topic, cfg.Partitions, nil); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", cfg.Topic, err)
	}
	var (
		mu                       sync.Mutex
		prodLat, e2eLat          []int64
		produced, pBytes, failed atomic.Int64
		consumed, cBytes         atomic.Int64
		wg, cwg                  sync.WaitGroup
	)
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	group := cfg.Topic + "-readers"
	for i := range cfg.Consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			cs, err := cl.NewConsumer(group, []string{cfg.Topic}, client.WithPollWait(500*time.Millisecond), client.WithMemberID(fmt.Sprintf("bench-%d", i)), client.WithMaxPollRecords(5000))
			if err != nil {
				return
			}
			defer func() {
				c2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = cs.Close(c2)
				cancel()
			}()
			var local []int64
			defer func() { mu.Lock(); e2eLat = append(e2eLat, local...); mu.Unlock() }()
			for cctx.Err() == nil {
				recs, err := cs.Poll(cctx)
				if err != nil {
					continue
				}
				now := time.Now().UnixNano()
				for _, r := range recs {
					if len(r.Value) >= 8 {
						local = append(local, now-int64(binary.BigEndian.Uint64(r.Value)))
					}
					consumed.Add(1)
					cBytes.Add(int64(len(r.Value)))
				}
			}
		}()
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	logf("producing for %s with %d producers into %d partitions of %s ...", cfg.Duration, cfg.Producers, cfg.Partitions, cfg.Topic)
	for w := range cfg.Producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []int64
			var lmu sync.Mutex
			p, err := cl.NewProducer(ctx, cfg.Topic, client.WithBatchBytes(cfg.BatchBytes), client.WithLinger(cfg.Linger),
				client.WithDeliveryCallback(func(r client.Record, _ client.Delivery, err error) {
					if err != nil {
						failed.Add(1)
						return
					}
					lat := time.Now().UnixNano() - int64(binary.BigEndian.Uint64(r.Value))
					lmu.Lock()
					local = append(local, lat)
					lmu.Unlock()
					produced.Add(1)
					pBytes.Add(int64(len(r.Value)))
				}))
			if err != nil {
				failed.Add(1)
				return
			}
			// Random bytes: real payloads do not compress to nothing, and the
			// object sizes and request counts per GB depend on it.
			rnd := rand.NewChaCha8([32]byte{byte(w)})
			var interval time.Duration
			if cfg.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(cfg.Producers) / float64(cfg.Rate))
			}
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d)
					}
				}
				v := make([]byte, cfg.RecordBytes)
				_, _ = rnd.Read(v[8:])
				binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
				p.Produce(ctx, client.Record{Value: v})
			}
			c2, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			_ = p.Close(c2)
			cancel()
			lmu.Lock()
			mu.Lock()
			prodLat = append(prodLat, local...)
			mu.Unlock()
			lmu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cfg.Consumers > 0 {
		logf("produced %d records; waiting for consumers to catch up ...", produced.Load())
		for wait := time.Now().Add(60 * time.Second); consumed.Load() < produced.Load() && time.Now().Before(wait); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	readElapsed := time.Since(start)
	stopConsumers()
	cwg.Wait()

	res := &Result{}
	res.Config.Producers, res.Config.Consumers, res.Config.Partitions = cfg.Producers, cfg.Consumers, cfg.Partitions
	res.Config.RecordBytes, res.Config.BatchBytes, res.Config.LingerMs = cfg.RecordBytes, cfg.BatchBytes, cfg.Linger.Milliseconds()
	res.Config.Seconds, res.Config.Endpoint, res.Config.Rate = elapsed.Seconds(), cfg.URL, cfg.Rate
	res.Produced, res.ProducedBytes, res.Failed = produced.Load(), pBytes.Load(), failed.Load()
	res.Consumed, res.ConsumedBytes = consumed.Load(), cBytes.Load()
	res.ProduceMBps = float64(res.ProducedBytes) / elapsed.Seconds() / 1e6
	res.ProduceRecPerS = float64(res.Produced) / elapsed.Seconds()
	res.ConsumeMBps = float64(res.ConsumedBytes) / readElapsed.Seconds() / 1e6
	res.ProduceLatency, res.EndToEnd = percentiles(prodLat), percentiles(e2eLat)
	res.HTTP = HTTPCounts{ProduceRequests: hc.pReq.Load(), ProduceBytes: hc.pBytes.Load(), ProduceSeconds: float64(hc.pNs.Load()) / 1e9,
		ConsumeRequests: hc.cReq.Load(), ConsumeBytes: hc.cBytes.Load(), ConsumeSeconds: float64(hc.cNs.Load()) / 1e9,
		OtherRequests: hc.other.Load(), APIGWUnits: hc.units.Load()}
	if cfg.Bucket != nil && cfg.Table != nil {
		oc, mc := cfg.Bucket.Counts(), cfg.Table.Counts()
		res.Objects, res.Metadata = &oc, &mc
		res.PerGB = perGB(res, oc, mc)
		res.Cost = costOf(res, oc, mc, cfg.Prices)
	}
	return res, nil
}

func perGB(r *Result, oc faults.BucketCounts, mc faults.TableCounts) *PerGB {
	gbW := float64(r.ProducedBytes) / 1e9
	gbR := float64(max(r.ConsumedBytes, 1)) / 1e9
	if gbW == 0 {
		return nil
	}
	return &PerGB{
		PutsPerGBWritten:          float64(oc.Put) / gbW,
		GetsPerGBRead:             float64(oc.Get) / gbR,
		ListsPerGB:                float64(oc.List) / gbW,
		MetadataWritesPerGB:       float64(mc.Write) / gbW,
		MetadataWriteUnitsPerGB:   float64(writeUnits(mc)) / gbW,
		MetadataReadUnitsPerGB:    float64(mc.ItemsRead) / gbW,
		TransactionItemsPerGB:     float64(mc.TransactionalOps) / gbW,
		ProduceRequestsPerGB:      float64(r.HTTP.ProduceRequests) / gbW,
		ConsumeRequestsPerGB:      float64(r.HTTP.ConsumeRequests) / gbR,
		AverageObjectBytes:        float64(oc.PutBytes) / float64(max(oc.Put, 1)),
		AverageProduceRequestByte: float64(r.HTTP.ProduceBytes) / float64(max(r.HTTP.ProduceRequests, 1)),
	}
}

// writeUnits: DynamoDB bills transactional writes twice per item.
func writeUnits(mc faults.TableCounts) int64 {
	return (mc.WriteOps - mc.TransactionalOps) + 2*mc.TransactionalOps
}
