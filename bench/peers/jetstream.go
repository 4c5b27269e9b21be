package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetstream runs an embedded NATS server with JetStream's file store in a
// fresh directory, one stream of one subject, and clients that each
// publish requests of records messages and wait for every ack (one
// synchronous publish for a 1-record request). always sets
// sync_interval: always (fsync on every write); otherwise the default
// (a periodic fsync, so acknowledged messages can be lost on power loss).
func runJetStream(ctx context.Context, always bool, clients, records, recordBytes int, d time.Duration) ([]row, error) {
	dir, err := os.MkdirTemp("", "peers-jetstream-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
	if always {
		opts.SyncAlways = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("nats-server did not start")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "bench", Subjects: []string{"bench"}, Storage: jetstream.FileStorage}); err != nil {
		return nil, err
	}
	nc.Close()
	payload := make([]byte, recordBytes)
	for i := range payload {
		payload[i] = 'a' + byte(rand.IntN(26))
	}
	var (
		mu       sync.Mutex
		lat      []float64
		requests atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			c, err := nats.Connect(s.ClientURL())
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer c.Close()
			cjs, err := jetstream.New(c, jetstream.WithPublishAsyncMaxPending(records))
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			var local []float64
			for time.Since(start) < d {
				t0 := time.Now()
				if records == 1 {
					if _, err := cjs.Publish(ctx, "bench", payload); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				} else {
					futures := make([]jetstream.PubAckFuture, records)
					for i := range futures {
						if futures[i], err = cjs.PublishAsync("bench", payload); err != nil {
							firstErr.CompareAndSwap(nil, err)
							return
						}
					}
					for _, f := range futures {
						select {
						case <-f.Ok():
						case err := <-f.Err():
							firstErr.CompareAndSwap(nil, err)
							return
						}
					}
				}
				local = append(local, float64(time.Since(t0).Microseconds())/1000)
				requests.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	elapsed := time.Since(start).Seconds()
	slices.Sort(lat)
	pct := func(p int) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, len(lat)*p/100)]
	}
	n := float64(requests.Load())
	name, note := "jetstream (default)", "periodic fsync: acknowledged messages can be lost on power loss"
	if always {
		name, note = "jetstream (fsync always)", "sync_interval: always"
	}
	return []row{{System: name, Clients: clients, Records: records, RecordsPerS: n * float64(records) / elapsed,
		MBPerS: n * float64(records*recordBytes) / elapsed / 1e6, P50: pct(50), P99: pct(99), Note: note}}, nil
}
