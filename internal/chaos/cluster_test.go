package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/dynamolike"
	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/compactor"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// backend is durable storage that outlives the broker processes over it.
type backend struct {
	name   string
	table  offsets.Table
	bucket segments.Bucket
	// resource is the S3 bucket and DynamoDB table name (MinIO+moto).
	resource string
	// settle waits for writes still in flight (nil: none can be).
	settle func()
}

func backends(t *testing.T) []func(*testing.T) backend {
	return []func(*testing.T) backend{embedded, embeddedDynamoLike, minioMoto}
}

func embedded(t *testing.T) backend {
	bt, fb := testenv.Embedded(t, t.TempDir())
	return backend{name: "embedded", table: bt, bucket: fb}
}

// embeddedDynamoLike is the embedded default behind a table that behaves
// as DynamoDB does under concurrency: multi-item reads torn by concurrent
// transactions, overlapping transactions refused, and writes answered
// with an error that were applied, or land only after the caller re-read.
func embeddedDynamoLike(t *testing.T) backend {
	bt, fb := testenv.Embedded(t, t.TempDir())
	s := seed(t)
	dl := dynamolike.New(bt, dynamolike.Config{Seed: s, TornReads: true, MaxInFlight: time.Millisecond, AmbiguousRate: 0.02})
	t.Cleanup(dl.Wait)
	return backend{name: "embedded+dynamolike", table: dl, bucket: fb, settle: dl.Wait}
}

// minioMoto: few SDK retries, the harness injects the faults it wants.
func minioMoto(t *testing.T) backend {
	table, bucket, name := testenv.MinIOMoto(t, "chaos", 3)
	return backend{name: "minio+moto", table: table, bucket: bucket, resource: name}
}

// seed is the run's seed: STREAMBED_CHAOS_SEED or the clock. Printed so a
// failing run's fault schedule can be replayed.
func seed(t *testing.T) uint64 {
	if v := os.Getenv("STREAMBED_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("STREAMBED_CHAOS_SEED=%q: %v", v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// process is one broker process over the backend: its own caches, locks
// and compactor, its storage calls going through injectors that share one
// life, so it can be killed at any step.
type process struct {
	life          *faults.Life
	objects, meta *faults.Injector
	broker        *broker.Broker
	handler       http.Handler
	stopCompactor func()
}

// cluster serves the API at one URL while processes come and go behind it.
type cluster struct {
	t       *testing.T
	be      backend
	seed    uint64
	gen     atomic.Uint64
	url     string
	cur     atomic.Pointer[process]
	compact bool
	mu      sync.Mutex
	plans   [2]faults.Plan // objects, metadata: applied to every new process
	crashes atomic.Int64
	all     []*process // every process started, for fault counts
}

func newCluster(t *testing.T, be backend, seed uint64, compact bool) *cluster {
	c := &cluster{t: t, be: be, seed: seed, compact: compact}
	c.start()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.cur.Load().handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { c.cur.Load().stop() })
	c.url = srv.URL
	return c
}

// start begins a new process (after a crash, as a restart would).
func (c *cluster) start() {
	g := c.gen.Add(1)
	life := faults.NewLife()
	p := &process{life: life, objects: faults.NewInjector(c.seed+g*2, life), meta: faults.NewInjector(c.seed+g*2+1, life)}
	c.mu.Lock()
	p.objects.Set(c.plans[0])
	p.meta.Set(c.plans[1])
	c.all = append(c.all, p)
	c.mu.Unlock()
	bucket := faults.WrapBucket(c.be.bucket, p.objects)
	table := faults.WrapTable(c.be.table, p.meta)
	store := offsets.New(table, offsets.WithRetry(8, 5*time.Millisecond, 200*time.Millisecond))
	p.broker = broker.New(store, bucket, broker.Config{PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond})
	comp := compactor.New(store, bucket, compactor.Config{Budget: 2 * time.Second, MergeMinBytes: 8 << 10, MergeMinAge: time.Second, LeaseTTL: 10 * time.Second})
	p.handler = httpapi.New(p.broker, httpapi.Options{Compactor: comp}).Handler()
	p.stopCompactor = func() {}
	if c.compact {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				_, _ = comp.Run(ctx)
				select {
				case <-ctx.Done():
				case <-time.After(300 * time.Millisecond):
				}
			}
		}()
		p.stopCompactor = func() { cancel(); <-done }
	}
	c.cur.Store(p)
}

// settle waits for storage writes still in flight.
func (c *cluster) settle() {
	if c.be.settle != nil {
		c.be.settle()
	}
}

// faultsFired is every fault injected so far, by every process.
func (c *cluster) faultsFired() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int64(0)
	for _, p := range c.all {
		n += p.objects.Stats().Total() + p.meta.Stats().Total()
	}
	return n
}

func (p *process) stop() {
	p.stopCompactor()
	p.broker.Drain()
}

// setPlans changes the faults of the current and future processes.
func (c *cluster) setPlans(objects, meta faults.Plan) {
	c.mu.Lock()
	c.plans = [2]faults.Plan{objects, meta}
	c.mu.Unlock()
	p := c.cur.Load()
	p.objects.Set(objects)
	p.meta.Set(meta)
}

// crashAfter kills the current process after its next n storage calls,
// waits for the crash (or gives up after wait) and starts a new process.
func (c *cluster) crashAfter(n int64, wait time.Duration) {
	p := c.cur.Load()
	p.life.CrashAfter(n)
	deadline := time.Now().Add(wait)
	for !p.life.Dead() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.life.CrashAfter(0) // whatever it was doing, it is dead now
	c.crashes.Add(1)
	c.start()
	go p.stop() // a dead process's goroutines wind down; its storage calls all fail
}
