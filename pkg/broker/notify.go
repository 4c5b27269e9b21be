package broker

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// watchers wakes long polls when a partition they wait on grows. Local
// commits wake them at once. Commits made by other processes are seen by
// one poller per broker that reads the heads of every watched partition —
// in batched reads, however many requests wait on them — and backs off
// while nothing changes; with a sole writer (the embedded store, which one
// process holds) there are none, and an idle long poll or stream costs
// the store nothing at all.
type watchers struct {
	b  *Broker
	mu sync.Mutex
	// parts: the waiters of each watched partition, with the log end each
	// has seen.
	parts   map[string]*watched
	polling bool
	kick    chan struct{}
}

type watched struct {
	topic offsets.Topic
	p     int32
	subs  map[chan struct{}]int64
}

func newWatchers(b *Broker) *watchers {
	return &watchers{b: b, parts: map[string]*watched{}, kick: make(chan struct{}, 1)}
}

// watchReq names a partition to watch and the log end the waiter knows.
type watchReq struct {
	topic offsets.Topic
	p     int32
	known int64
}

// add registers wake (a channel of capacity 1) on partitions; the returned
// function unregisters it. A wake is a hint: the waiter reads again.
func (w *watchers) add(wake chan struct{}, reqs []watchReq) func() {
	w.mu.Lock()
	keys := make([]string, len(reqs))
	for i, r := range reqs {
		k := partKey(r.topic.ID, r.p)
		keys[i] = k
		wp := w.parts[k]
		if wp == nil {
			wp = &watched{topic: r.topic, p: r.p, subs: map[chan struct{}]int64{}}
			w.parts[k] = wp
		}
		wp.subs[wake] = r.known
	}
	start := !w.polling && !w.b.cfg.SoleWriter && len(reqs) > 0
	if start {
		w.polling = true
	}
	w.mu.Unlock()
	if start {
		go w.poll()
	} else {
		select {
		case w.kick <- struct{}{}: // poll new partitions soon
		default:
		}
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, k := range keys {
			if wp := w.parts[k]; wp != nil {
				delete(wp.subs, wake)
				if len(wp.subs) == 0 {
					delete(w.parts, k)
				}
			}
		}
	}
}

// known records the log end a waiter has now seen on a partition.
func (w *watchers) known(wake chan struct{}, topicID string, p int32, end int64) {
	w.mu.Lock()
	if wp := w.parts[partKey(topicID, p)]; wp != nil {
		if _, ok := wp.subs[wake]; ok {
			wp.subs[wake] = end
		}
	}
	w.mu.Unlock()
}

// notify wakes the waiters of a partition a local commit grew.
func (w *watchers) notify(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wp := w.parts[key]; wp != nil {
		for ch := range wp.subs {
			wake(ch)
		}
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// poll reads the heads of watched partitions until none are watched,
// every PollMin at first and backing off to PollMax while nothing grows.
func (w *watchers) poll() {
	interval := w.b.cfg.PollMin
	for {
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-w.kick:
			t.Stop()
			interval = w.b.cfg.PollMin
		case <-w.b.draining:
			t.Stop()
			w.mu.Lock()
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		byTopic := map[string]*watchBatch{}
		for _, wp := range w.parts {
			bt := byTopic[wp.topic.ID]
			if bt == nil {
				bt = &watchBatch{topic: wp.topic}
				byTopic[wp.topic.ID] = bt
			}
			bt.parts = append(bt.parts, wp.p)
		}
		if len(byTopic) == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		grew := false
		for _, id := range slices.Sorted(maps.Keys(byTopic)) {
			bt := byTopic[id]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			states, err := w.b.store.Partitions(ctx, bt.topic, bt.parts...) // one batched read (chunks of 100 keys)
			cancel()
			if err != nil {
				continue // the waiters' own deadlines bound them
			}
			w.mu.Lock()
			for _, st := range states {
				wp := w.parts[partKey(id, st.Partition)]
				if wp == nil {
					continue
				}
				for ch, known := range wp.subs {
					if st.LogEnd > known || st.Deleted || st.LogStart > known {
						wake(ch)
						grew = true
					}
				}
			}
			w.mu.Unlock()
		}
		if grew {
			interval = w.b.cfg.PollMin
		} else {
			interval = min(2*interval, w.b.cfg.PollMax)
		}
	}
}

type watchBatch struct {
	topic offsets.Topic
	parts []int32
}

func partKey(topicID string, p int32) string { return topicID + "#" + itoa(int64(p)) }
