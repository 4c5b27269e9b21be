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
// it alone, on the state the requests before it in the flush left.
// Commits happen in flush order, so appends to a partition commit in the
// order the requests were queued; with MaxInFlight above 1 flushes
// pipeline (the next uploads while the previous commits). A request is
// answered once the flush holding it has committed.
//
// Requests are encoded in their own goroutines before they queue (the
// CPU-heavy part runs in parallel with everything); a flush only
// concatenates them. A flush waits (briefly) for the clients the previous
// flush just answered, who are sending their next requests, until as many
// are queued as that flush held: without that, the flushes of clients
// that each wait for their answer shrink to a few requests each. A lone
// request never waits.

// FlushConfig bounds group commit. Zero values take the defaults.
type FlushConfig struct {
	// Delay bounds how long a flush waits for the clients the previous
	// flush answered to send their next requests (default 20 ms; negative:
	// never); it waits at most a quarter of the previous flush's duration
	// anyway, and stops once as many requests are queued as that flush
	// held. A lone request never waits.
	Delay time.Duration
	// MaxBytes bounds a flush's object (default 8 MiB): larger objects
	// take longer to upload, and every request in them waits for it.
	MaxBytes int
	// MaxRequests bounds the requests in one flush (default 256): each
	// adds an index entry to the commit, 98 of which fit in a transaction.
	MaxRequests int
	// MaxInFlight is how many flushes may be between being taken from
	// the queue and committed (default 1). With 2, the next flush uploads
	// while the previous one commits; more upload in parallel. Measured on
	// the embedded store and on MinIO + moto, overlapping made flushes
	// smaller without making them faster (the disk's journal, or the
	// machine, serializes the two), so the fixed cost of each (an object,
	// a commit) lowered throughput: see docs/benchmarks.md.
	MaxInFlight int
	// Off writes every request as its own object and commit.
	Off bool
}

func (c FlushConfig) withDefaults() FlushConfig {
	if c.Delay == 0 {
		c.Delay = 20 * time.Millisecond
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 8 << 20
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = 256
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1
	}
	return c
}

// slowFlush is a flush slow enough that merging more requests into the
// next one is worth a wait (measured: on the embedded store flushes take
// about 2 ms and cost in proportion to their size; on MinIO + moto about
// 50 ms, mostly fixed).
const slowFlush = 10 * time.Millisecond

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
// commits they took, and the time flushes spent uploading and committing.
type FlushStats struct {
	Requests, Flushes, Commits int64
	Upload, Commit             time.Duration
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
	// slots holds one token per flush between its take and its commit,
	// across flush loops.
	slots chan struct{}
	// arrived is signalled when a request queues; last is how many
	// requests the previous flush took, lastDur how long it took, and
	// answered when it answered them.
	arrived  chan struct{}
	last     int
	lastDur  time.Duration
	answered time.Time
	stats    FlushStats
}

// submit queues r and makes sure a flush loop runs.
func (f *flusher) submit(r *flushReq) {
	f.mu.Lock()
	f.queue = append(f.queue, r)
	f.stats.Requests++
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	if !f.running {
		f.running = true
		go f.run()
	}
	f.mu.Unlock()
}

// gather waits for the clients the previous flush just answered: until
// the queue holds as many requests as that flush took, and no longer than
// a quarter of that flush's duration after it answered (so waiting costs
// a flush at most a quarter more time), never over Delay. After a slow
// flush (an object store over a network), whose cost hardly depends on its
// size, it waits for those clients on top of the ones already queued, so
// that clients split between alternating flushes join one. A flush that
// starts later, or without a previous one, does not wait.
func (f *flusher) gather() {
	f.mu.Lock()
	want := f.last
	if f.lastDur >= slowFlush {
		want += len(f.queue)
	}
	want = min(want, f.cfg.MaxRequests)
	wait := time.Until(f.answered.Add(min(f.lastDur/4, f.cfg.Delay)))
	f.mu.Unlock()
	if wait <= 0 {
		return
	}
	var timer *time.Timer
	for {
		f.mu.Lock()
		enough := len(f.queue) >= want
		f.mu.Unlock()
		if enough {
			break
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-f.arrived:
		case <-timer.C:
			return
		}
	}
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
	f.last = len(batch)
	return batch
}

// run flushes until the queue is empty. Up to MaxInFlight flushes
// assemble and upload at once (an upload is mostly waiting for the disk
// or the network); their commits happen one at a time, in flush order.
func (f *flusher) run() {
	f.mu.Lock()
	committing := f.committing
	f.mu.Unlock()
	slots := f.slots
	for {
		slots <- struct{}{} // requests queue up while every slot is busy
		f.gather()
		batch := f.take()
		if batch == nil {
			<-slots
			return
		}
		prev, done := committing, make(chan struct{})
		go func() {
			defer func() { <-slots }()
			defer close(done)
			start := time.Now()
			defer func() {
				f.mu.Lock()
				f.answered = time.Now()
				f.lastDur = f.answered.Sub(start)
				f.mu.Unlock()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			defer cancel()
			fl, err := f.b.assemble(ctx, batch)
			uploaded := time.Now()
			if prev != nil {
				<-prev // commits (and failures) in flush order
			}
			committing := time.Now()
			defer func() {
				f.mu.Lock()
				f.stats.Upload += uploaded.Sub(start)
				f.stats.Commit += time.Since(committing)
				f.mu.Unlock()
			}()
			if err != nil {
				for _, r := range batch {
					r.done <- flushOut{err: err}
				}
				return
			}
			f.commit(ctx, fl)
		}()
		committing = done
		f.mu.Lock()
		f.committing = done
		f.mu.Unlock()
	}
}

// assembled is an uploaded flush waiting for its commit.
type assembled struct {
	reqs   []*flushReq
	key    string
	obj    []byte
	groups []group
}

// A group is consecutive batches of one partition, from requests in
// queue order, stored as one slice. Plain batches (no producer, expected
// offset or fencing token: nothing that could fail one request and not
// its neighbours) of the same partition share a group and commit as one
// index entry; any other batch is a group of its own.
type group struct {
	t       offsets.Topic
	pb      partBatch // the first member's (partition, partition count, conditions)
	plain   bool
	slice   segments.SliceInfo
	members []slot
}

// slot is one request's batch inside a group's slice.
type slot struct {
	req, batch int
	off, size  int64 // byte range in the object
	st         segments.BatchStats
}

func plain(pb partBatch) bool {
	return pb.producer == nil && pb.expectedOffset < 0 && pb.fence == nil
}

// assemble groups the requests' batches, writes them into one object and
// uploads it.
func (b *Broker) assemble(ctx context.Context, reqs []*flushReq) (*assembled, error) {
	fl := &assembled{reqs: reqs}
	open := map[string]int{} // partition → its group still taking plain batches
	size := 0
	for i, r := range reqs {
		size += r.bytes
		for j, eb := range r.batches {
			m := slot{req: i, batch: j, size: int64(len(eb.data)), st: eb.st}
			k := partKey(r.t.ID, eb.pb.partition)
			if g, ok := open[k]; ok && plain(eb.pb) && fl.groups[g].pb.partitions == eb.pb.partitions {
				fl.groups[g].members = append(fl.groups[g].members, m)
				continue
			}
			fl.groups = append(fl.groups, group{t: r.t, pb: eb.pb, plain: plain(eb.pb), members: []slot{m}})
			if plain(eb.pb) {
				open[k] = len(fl.groups) - 1
			} else {
				delete(open, k) // later plain batches must follow this one
			}
		}
	}
	w := segments.NewObjectWriter(size + 128*len(fl.groups))
	for gi := range fl.groups {
		g := &fl.groups[gi]
		if err := w.BeginSlice(g.t.ID, g.pb.partition); err != nil {
			return nil, err
		}
		buf := w.Buffer()
		info := segments.SliceInfo{BaseOffset: -1, MinTimestamp: -1, MaxTimestamp: -1}
		for mi := range g.members {
			m := &g.members[mi]
			m.off = int64(len(buf))
			buf = append(buf, reqs[m.req].batches[m.batch].data...)
			info.Records += int64(m.st.Records)
			info.LastDelta += m.st.Span
			if m.st.Records > 0 {
				if info.MinTimestamp < 0 || m.st.MinTimestamp < info.MinTimestamp {
					info.MinTimestamp = m.st.MinTimestamp
				}
				info.MaxTimestamp = max(info.MaxTimestamp, m.st.MaxTimestamp)
			}
		}
		info.LastDelta--
		if err := w.EndSlice(buf, info); err != nil {
			return nil, err
		}
		g.slice = w.Slices()[len(w.Slices())-1]
	}
	obj, _, err := w.Finish()
	if err != nil {
		return nil, err
	}
	fl.obj = obj
	if fl.key, err = b.upload(ctx, obj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCommitted, err)
	}
	return fl, nil
}

// appendOf is the store's view of a slice of a batch or a group.
func appendOf(pb partBatch, s segments.SliceInfo) offsets.Append {
	return offsets.Append{
		Partition: pb.partition, Offset: s.Offset, Length: s.Length, Records: s.Records,
		MinTs: s.MinTimestamp, MaxTs: s.MaxTimestamp, Bytes: s.Length, Points: indexPoints(s),
		Producer: pb.producer, ExpectedOffset: pb.expectedOffset, FenceToken: pb.fence, Partitions: pb.partitions,
	}
}

// memberSlice is one member's batch as a slice of its own.
func memberSlice(g *group, m slot) segments.SliceInfo {
	return segments.SliceInfo{TopicID: g.t.ID, Partition: g.pb.partition, Offset: m.off, Length: m.size, BaseOffset: -1,
		Records: int64(m.st.Records), LastDelta: m.st.Span - 1, MinTimestamp: m.st.MinTimestamp, MaxTimestamp: m.st.MaxTimestamp}
}

// commit commits an uploaded flush and answers its requests.
func (f *flusher) commit(ctx context.Context, fl *assembled) {
	results, errs, live, commits := f.b.commitFlush(ctx, fl, nil)
	f.mu.Lock()
	f.stats.Commits += int64(commits)
	f.mu.Unlock()
	for i, r := range fl.reqs {
		if live[i] {
			r.done <- flushOut{results: results[i], err: errs[i]}
		}
	}
}

// commitFlush commits an uploaded flush, topic by topic (with idem, the
// flush is one Idempotency-Key request's). A group whose members are all
// still wanted commits as one index entry; one that lost a member (its
// caller gave up) commits the others' batches one by one. It returns each
// request's results or error, which requests were still wanted, and how
// many commits it made.
func (b *Broker) commitFlush(ctx context.Context, fl *assembled, idem *offsets.Idempotent) ([][]offsets.AppendResult, []error, []bool, int) {
	live := make([]bool, len(fl.reqs))
	for i, r := range fl.reqs {
		live[i] = r.state.CompareAndSwap(reqWaiting, reqCommitting)
	}
	type unit struct {
		g     *group
		s     segments.SliceInfo
		pb    partBatch
		from  []slot // the members it answers, in order
		topic string
	}
	var order []string
	byTopic := map[string][]unit{}
	var keys []string
	for gi := range fl.groups {
		g := &fl.groups[gi]
		var present []slot
		for _, m := range g.members {
			if live[m.req] {
				present = append(present, m)
			}
		}
		if len(present) == 0 {
			continue
		}
		if _, ok := byTopic[g.t.ID]; !ok {
			order = append(order, g.t.ID)
		}
		keys = append(keys, partKey(g.t.ID, g.pb.partition))
		if len(present) == len(g.members) {
			byTopic[g.t.ID] = append(byTopic[g.t.ID], unit{g: g, s: g.slice, pb: g.pb, from: present})
			continue
		}
		for _, m := range present {
			byTopic[g.t.ID] = append(byTopic[g.t.ID], unit{g: g, s: memberSlice(g, m), pb: fl.reqs[m.req].batches[m.batch].pb, from: []slot{m}})
		}
	}
	results := make([][]offsets.AppendResult, len(fl.reqs))
	errs := make([]error, len(fl.reqs))
	for i, r := range fl.reqs {
		results[i] = make([]offsets.AppendResult, len(r.batches))
	}
	unlock := b.lockKeys(keys)
	unreferenced, commits := true, 0
	meta := offsets.ObjectMeta{Key: fl.key, Size: int64(len(fl.obj)), Uploaded: b.now()}
	for _, id := range order {
		units := byTopic[id]
		appends := make([]offsets.Append, len(units))
		for k, u := range units {
			appends[k] = appendOf(u.pb, u.s)
		}
		t := units[0].g.t
		cr, err := b.store.CommitObject(ctx, t, meta, appends, idem)
		commits++
		unreferenced = unreferenced && cr.Unreferenced
		if err != nil {
			if cr.Unreferenced {
				err = fmt.Errorf("%w: %w", ErrNotCommitted, err)
			}
			for _, u := range units {
				for _, m := range u.from {
					errs[m.req] = err
				}
			}
			continue
		}
		grown := false
		for k, u := range units {
			r := cr.Results[k]
			grown = grown || r.Partitions > t.Partitions
			switch {
			case r.Err == nil && !r.Duplicate:
				b.remember(t.ID, fl.key, fl.obj, u.s, appends[k], r)
				b.watch.notify(partKey(t.ID, r.Partition))
			case errors.Is(r.Err, offsets.ErrUnknownTopic):
				b.forgetTopic(t.Name)
			}
			// Each member gets its own part of the unit's offsets.
			next := r.Base
			for _, m := range u.from {
				mr := r
				if r.Err == nil && len(u.from) > 1 {
					mr.Base, mr.Last = next, next+m.st.Span-1
					next += m.st.Span
				}
				results[m.req][m.batch] = mr
			}
		}
		if grown {
			b.forgetTopic(t.Name) // the next request reads the new partition count
		}
	}
	unlock()
	if unreferenced {
		go b.deleteUnreferenced(fl.key)
	}
	for i := range fl.reqs {
		if live[i] && unreferenced {
			// No write that could point at the object was sent.
			for k, res := range results[i] {
				if res.Err != nil && offsets.IsRetryable(res.Err) {
					results[i][k].Err = fmt.Errorf("%w: %w", ErrNotCommitted, res.Err)
				}
			}
		}
	}
	return results, errs, live, commits
}

// encodeBatches encodes a request's batches, each on its own.
func (b *Broker) encodeBatches(t offsets.Topic, batches []partBatch) ([]encodedBatch, int, error) {
	out := make([]encodedBatch, len(batches))
	total := 0
	for i, pb := range batches {
		if pb.raw != nil {
			out[i] = encodedBatch{pb: pb, data: pb.raw, st: pb.rawStats}
			total += len(pb.raw)
			continue
		}
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
