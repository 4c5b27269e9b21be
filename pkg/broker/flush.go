package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Group commit. Produce requests that arrive while a flush is in progress
// wait for the next one, and a flush writes every waiting request's
// batches as one object, with one upload and one metadata commit per
// topic (split only at the store's transaction limits). Each request
// still gets its own per-partition results: its records for a partition
// are one slice and one index entry, contiguous and all or nothing, and
// expected offsets, fencing tokens and producer sequences are decided for
// it alone, on the state the requests before it in the flush left. Flushes
// pipeline: the next is assembled and uploaded while the previous commits,
// and commits happen in flush order, so appends to a partition commit in
// the order the requests were queued. A request is answered once the
// flush holding it has committed.
//
// Requests are encoded in their own goroutines before they queue (the
// CPU-heavy part runs in parallel); a flush only concatenates them. With a
// zero FlushDelay a flush starts as soon as the previous one finished
// uploading, so a lone request waits for nothing.

// FlushConfig bounds group commit. Zero values take the defaults.
type FlushConfig struct {
	// Delay is how long a flush waits for more requests once the previous
	// one is uploaded (default 0: at once). A delay adds that much latency
	// to every produce; it helps only when requests are too few to queue
	// on their own.
	Delay time.Duration
	// MaxBytes bounds a flush's object (default 8 MiB): larger objects
	// take longer to upload, and every request in them waits for it.
	MaxBytes int
	// MaxRequests bounds the requests in one flush (default 256): each
	// adds an index entry to the commit, 98 of which fit in a transaction.
	MaxRequests int
	// Off writes every request as its own object and commit.
	Off bool
}

func (c FlushConfig) withDefaults() FlushConfig {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 8 << 20
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = 256
	}
	return c
}

// flushTimeout bounds one flush's upload and commit.
const flushTimeout = 60 * time.Second

// encodedBatch is one partition's batch of one request, encoded.
type encodedBatch struct {
	pb   partBatch
	data []byte
	st   segments.BatchStats
}

// flushReq is one request waiting for a flush.
type flushReq struct {
	t       offsets.Topic
	batches []encodedBatch
	bytes   int
	done    chan flushOut
	// state moves from waiting to committing when its flush's commit
	// takes it, or to abandoned when its caller gave up first: then the
	// commit leaves it out, and the caller knows nothing was committed.
	state atomic.Int32
}

const (
	reqWaiting = iota
	reqCommitting
	reqAbandoned
)

// abandon gives up on r; false if its commit already started.
func (r *flushReq) abandon() bool { return r.state.CompareAndSwap(reqWaiting, reqAbandoned) }

type flushOut struct {
	results []offsets.AppendResult
	err     error
}

// FlushStats count group commit's work: requests, and the objects and
// commits they took.
type FlushStats struct {
	Requests, Flushes, Commits int64
}

type flusher struct {
	b   *Broker
	cfg FlushConfig

	mu      sync.Mutex
	queue   []*flushReq
	running bool
	// committing is closed when the last flush started has committed: a
	// new flush loop commits after it.
	committing chan struct{}
	stats      FlushStats
}

// submit queues r and makes sure a flush loop runs.
func (f *flusher) submit(r *flushReq) {
	f.mu.Lock()
	f.queue = append(f.queue, r)
	f.stats.Requests++
	if !f.running {
		f.running = true
		go f.run()
	}
	f.mu.Unlock()
}

// take removes the next flush's requests from the queue.
func (f *flusher) take() []*flushReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	var batch []*flushReq
	n, bytes := 0, 0
	for ; n < len(f.queue) && len(batch) < f.cfg.MaxRequests && (len(batch) == 0 || bytes+f.queue[n].bytes <= f.cfg.MaxBytes); n++ {
		if f.queue[n].state.Load() == reqAbandoned {
			continue
		}
		bytes += f.queue[n].bytes
		batch = append(batch, f.queue[n])
	}
	f.queue = append([]*flushReq(nil), f.queue[n:]...)
	if len(batch) == 0 {
		if len(f.queue) == 0 {
			f.running = false
			return nil
		}
		return f.take()
	}
	f.stats.Flushes++
	return batch
}

// run flushes until the queue is empty. At most two flushes are in
// flight: one uploading, the one before it committing.
func (f *flusher) run() {
	f.mu.Lock()
	committing := f.committing
	f.mu.Unlock()
	for {
		if f.cfg.Delay > 0 {
			time.Sleep(f.cfg.Delay)
		}
		batch := f.take()
		if batch == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		fl, err := f.b.assemble(ctx, batch)
		if err != nil {
			cancel()
			for _, r := range batch {
				r.done <- flushOut{err: err}
			}
			continue
		}
		prev, done := committing, make(chan struct{})
		go func() {
			defer close(done)
			defer cancel()
			if prev != nil {
				<-prev // commits in flush order
			}
			f.commit(ctx, fl)
		}()
		committing = done
		f.mu.Lock()
		f.committing = done
		f.mu.Unlock()
		if prev != nil {
			<-prev
		}
	}
}

// assembled is an uploaded flush waiting for its commit.
type assembled struct {
	reqs   []*flushReq
	key    string
	obj    []byte
	slices []segments.SliceInfo // per request, per batch, in order
	at     [][]int              // index into slices of each request's batches
}

// assemble writes the requests' batches into one object and uploads it.
func (b *Broker) assemble(ctx context.Context, reqs []*flushReq) (*assembled, error) {
	size := 0
	for _, r := range reqs {
		size += r.bytes
	}
	w := segments.NewObjectWriter(size + 128*len(reqs))
	fl := &assembled{reqs: reqs, at: make([][]int, len(reqs))}
	for i, r := range reqs {
		for _, eb := range r.batches {
			if err := w.BeginSlice(r.t.ID, eb.pb.partition); err != nil {
				return nil, err
			}
			st := eb.st
			if err := w.EndSlice(append(w.Buffer(), eb.data...), segments.SliceInfo{BaseOffset: -1, Records: int64(st.Records), LastDelta: st.Span - 1, MinTimestamp: st.MinTimestamp, MaxTimestamp: st.MaxTimestamp}); err != nil {
				return nil, err
			}
			fl.at[i] = append(fl.at[i], len(w.Slices())-1)
		}
	}
	obj, slices, err := w.Finish()
	if err != nil {
		return nil, err
	}
	fl.obj, fl.slices = obj, slices
	if fl.key, err = b.upload(ctx, obj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCommitted, err)
	}
	return fl, nil
}

// commit commits an uploaded flush, topic by topic, and answers its
// requests.
func (f *flusher) commit(ctx context.Context, fl *assembled) {
	b := f.b
	type topicAppends struct {
		t       offsets.Topic
		appends []offsets.Append
		from    [][2]int // request, batch of each append
	}
	var order []string
	byTopic := map[string]*topicAppends{}
	var keys []string
	for i, r := range fl.reqs {
		if !r.state.CompareAndSwap(reqWaiting, reqCommitting) {
			continue // its caller gave up: it is not committed
		}
		ta := byTopic[r.t.ID]
		if ta == nil {
			ta = &topicAppends{t: r.t}
			byTopic[r.t.ID] = ta
			order = append(order, r.t.ID)
		}
		for j, eb := range r.batches {
			ta.appends = append(ta.appends, appendOf(eb.pb, fl.slices[fl.at[i][j]]))
			ta.from = append(ta.from, [2]int{i, j})
			keys = append(keys, partKey(r.t.ID, eb.pb.partition))
		}
	}
	results := make([][]offsets.AppendResult, len(fl.reqs))
	errs := make([]error, len(fl.reqs))
	for i, r := range fl.reqs {
		results[i] = make([]offsets.AppendResult, len(r.batches))
	}
	unlock := b.lockKeys(keys)
	unreferenced := true
	meta := offsets.ObjectMeta{Key: fl.key, Size: int64(len(fl.obj)), Uploaded: b.now()}
	for _, id := range order {
		ta := byTopic[id]
		cr, err := b.store.CommitObject(ctx, ta.t, meta, ta.appends, nil)
		f.mu.Lock()
		f.stats.Commits++
		f.mu.Unlock()
		unreferenced = unreferenced && cr.Unreferenced
		if err != nil {
			if cr.Unreferenced {
				err = fmt.Errorf("%w: %w", ErrNotCommitted, err)
			}
			for _, from := range ta.from {
				errs[from[0]] = err
			}
			continue
		}
		for k, from := range ta.from {
			results[from[0]][from[1]] = cr.Results[k]
		}
	}
	unlock()
	if unreferenced {
		go b.deleteUnreferenced(fl.key)
	}
	for i, r := range fl.reqs {
		if r.state.Load() != reqCommitting {
			continue
		}
		if errs[i] == nil {
			b.settle(r.t, fl.key, fl.obj, r.batches, results[i], fl.slices, fl.at[i], unreferenced)
		}
		r.done <- flushOut{results: results[i], err: errs[i]}
	}
}

// appendOf is the store's view of one slice of a batch.
func appendOf(pb partBatch, s segments.SliceInfo) offsets.Append {
	return offsets.Append{
		Partition: pb.partition, Offset: s.Offset, Length: s.Length, Records: s.Records,
		MinTs: s.MinTimestamp, MaxTs: s.MaxTimestamp, Bytes: s.Length, Points: indexPoints(s),
		Producer: pb.producer, ExpectedOffset: pb.expectedOffset, FenceToken: pb.fence, Partitions: pb.partitions,
	}
}

// settle applies a request's commit results: caches, watchers, and the
// errors of partitions whose commit was never sent.
func (b *Broker) settle(t offsets.Topic, key string, obj []byte, batches []encodedBatch, res []offsets.AppendResult, slices []segments.SliceInfo, at []int, unreferenced bool) {
	grown := false
	for i, r := range res {
		grown = grown || r.Partitions > t.Partitions
		if unreferenced && r.Err != nil && offsets.IsRetryable(r.Err) {
			res[i].Err = fmt.Errorf("%w: %w", ErrNotCommitted, r.Err)
		}
		switch {
		case r.Err == nil && !r.Duplicate:
			b.remember(t.ID, key, obj, slices[at[i]], appendOf(batches[i].pb, slices[at[i]]), r)
			b.watch.notify(partKey(t.ID, r.Partition))
		case errors.Is(r.Err, offsets.ErrUnknownTopic):
			b.forgetTopic(t.Name)
		}
	}
	if grown {
		b.forgetTopic(t.Name) // the next request reads the new partition count
	}
}

// encodeBatches encodes a request's batches, each on its own.
func (b *Broker) encodeBatches(t offsets.Topic, batches []partBatch) ([]encodedBatch, int, error) {
	out := make([]encodedBatch, len(batches))
	total := 0
	for i, pb := range batches {
		opt := segments.BatchOptions{Compression: b.comp, LogAppendTime: t.Config.TimestampType == "log_append"}
		if pb.producer != nil {
			opt.Producer = &segments.Producer{ID: pb.producer.ID, Epoch: pb.producer.Epoch, BaseSequence: pb.producer.FirstSeq}
		}
		data, st, err := b.codec.AppendBatch(make([]byte, 0, segments.EstimateBatchSize(pb.recs)), pb.recs, opt)
		if err != nil {
			return nil, 0, err
		}
		out[i] = encodedBatch{pb: pb, data: data, st: st}
		total += len(data)
	}
	return out, total, nil
}

// FlushStats returns group commit's counters.
func (b *Broker) FlushStats() FlushStats {
	b.flush.mu.Lock()
	defer b.flush.mu.Unlock()
	return b.flush.stats
}
