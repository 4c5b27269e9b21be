package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/kafkahash"
	"github.com/streambed/streambed/pkg/retry"
)

// Producer batches records per partition and sends them in few, large
// requests (each one object and one commit on the server, so batching is
// what keeps cost per GB low). By default it is an idempotent producer
// (Kafka KIP-98): retries, including those of requests whose answer was
// lost, never duplicate a record, and order per partition is kept with
// several requests in flight.
type Producer struct {
	c     *Client
	topic string
	cfg   producerConfig

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced when work completes
	partitions  int32
	refreshed   time.Time // when partitions was last read from the topic
	refreshing  bool
	maxRecord   int64
	buf         map[int32][]*pending
	bufBytes    int // unsealed
	bufRecords  int
	heldBytes   int // every record not yet settled: bounds memory
	linger      *time.Timer
	blocked     bool // records wait for a partition's outstanding batches
	sticky      int32
	pid         int64
	nextSeq     map[int32]int32
	nextIdx     map[int32]int64
	acked       map[int32]bool // partitions where a batch of this producer was committed
	unresolved  map[int32][]*part
	outstanding int // records not yet delivered or failed
	fatal       error
	closed      bool
	queue       [][]*part // requests ready to send
	wake        chan struct{}
	sem         chan struct{}
	senders     sync.WaitGroup
}

type producerConfig struct {
	linger          time.Duration
	batchBytes      int
	maxInFlight     int
	bufferBytes     int
	idempotent      bool
	deliveryTimeout time.Duration
	metadataMaxAge  time.Duration
	onDelivery      func(Record, Delivery, error)
}

// ProducerOption configures a Producer.
type ProducerOption func(*producerConfig) error

// WithLinger sets how long a batch waits for more records (default 50 ms).
func WithLinger(d time.Duration) ProducerOption {
	return func(c *producerConfig) error {
		if d < 0 {
			return errors.New("client: negative linger")
		}
		c.linger = d
		return nil
	}
}

// WithBatchBytes sets the payload size at which a request is sent without
// waiting (default 1 MiB, at most 4 MiB: the server takes 5 MiB bodies).
func WithBatchBytes(n int) ProducerOption {
	return func(c *producerConfig) error {
		if n < 1 || n > 4<<20 {
			return errors.New("client: batch bytes must be between 1 and 4 MiB")
		}
		c.batchBytes = n
		return nil
	}
}

// WithMaxInFlight sets how many requests may be outstanding (default 5).
func WithMaxInFlight(n int) ProducerOption {
	return func(c *producerConfig) error {
		if n < 1 || n > 100 {
			return errors.New("client: max in flight must be between 1 and 100")
		}
		c.maxInFlight = n
		return nil
	}
}

// WithBufferBytes bounds records held for sending; Produce blocks when it
// is full (default 64 MiB).
func WithBufferBytes(n int) ProducerOption {
	return func(c *producerConfig) error {
		if n < 1<<10 {
			return errors.New("client: buffer must be at least 1 KiB")
		}
		c.bufferBytes = n
		return nil
	}
}

// WithIdempotence turns the idempotent producer protocol on (the default)
// or off. Without it, a request whose outcome is unknown is not retried.
func WithIdempotence(on bool) ProducerOption {
	return func(c *producerConfig) error { c.idempotent = on; return nil }
}

// WithDeliveryTimeout bounds how long a record may take to be
// acknowledged, retries included (default 2 min).
func WithDeliveryTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) error {
		if d <= 0 {
			return errors.New("client: delivery timeout must be positive")
		}
		c.deliveryTimeout = d
		return nil
	}
}

// WithMetadataMaxAge bounds how old the producer's idea of the topic's
// partition count may get before it reads it again (default 30 s, as a
// bound on Kafka's metadata.max.age.ms). Independently, every answer
// carries the count, so a producer that is sending learns of a partition
// increase within one request.
func WithMetadataMaxAge(d time.Duration) ProducerOption {
	return func(c *producerConfig) error {
		if d <= 0 {
			return errors.New("client: metadata max age must be positive")
		}
		c.metadataMaxAge = d
		return nil
	}
}

// WithDeliveryCallback calls fn for every record once it is delivered or
// has failed, including records Produce rejects at once. It runs with the
// producer's lock held: keep it quick and do not call the producer from it.
func WithDeliveryCallback(fn func(Record, Delivery, error)) ProducerOption {
	return func(c *producerConfig) error { c.onDelivery = fn; return nil }
}

// Delivery is where a record was stored.
type Delivery struct {
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Future is a record's delivery result.
type Future struct {
	done chan struct{}
	d    Delivery
	err  error
}

// Done is closed once the result is known.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait returns the result, waiting for it (or ctx).
func (f *Future) Wait(ctx context.Context) (Delivery, error) {
	select {
	case <-f.done:
		return f.d, f.err
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
}

// reject fails a record that never got buffered, telling the delivery
// callback too, so callers counting through it see every record.
func (p *Producer) reject(r Record, err error) *Future {
	if p.cfg.onDelivery != nil {
		p.cfg.onDelivery(r, Delivery{}, err)
	}
	return failed(err)
}

func failed(err error) *Future {
	f := &Future{done: make(chan struct{}), err: err}
	close(f.done)
	return f
}

type pending struct {
	rec  Record
	size int
	fut  *Future
}

// part is one partition's share of a request, with its sequence range.
type part struct {
	partition int32
	idx       int64 // the partition's parts are numbered 0, 1, 2, ...
	seq       int32
	recs      []*pending
	firstSent time.Time
	attempts  int
	sending   bool // in a request being sent or scheduled
	retry     bool // failed retryably; resend when it is its partition's turn
	done      bool
}

// Errors of the Producer.
var (
	ErrProducerClosed = errors.New("client: producer closed")
	ErrRecordTooLarge = errors.New("client: record larger than the topic's max_record_bytes")
)

// NewProducer returns a Producer for topic, which must exist.
func (c *Client) NewProducer(ctx context.Context, topic string, opts ...ProducerOption) (*Producer, error) {
	cfg := producerConfig{linger: 50 * time.Millisecond, batchBytes: 1 << 20, maxInFlight: 5, bufferBytes: 64 << 20, idempotent: true, deliveryTimeout: 2 * time.Minute, metadataMaxAge: 30 * time.Second}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	t, err := c.Topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	p := &Producer{
		c: c, topic: topic, cfg: cfg, changed: make(chan struct{}),
		partitions: t.Partitions, refreshed: time.Now(), maxRecord: 1 << 20, buf: map[int32][]*pending{}, sticky: -1,
		nextSeq: map[int32]int32{}, nextIdx: map[int32]int64{}, acked: map[int32]bool{}, unresolved: map[int32][]*part{},
		wake: make(chan struct{}, 1), sem: make(chan struct{}, cfg.maxInFlight),
	}
	if t.Config.MaxRecordBytes != nil {
		p.maxRecord = *t.Config.MaxRecordBytes
	}
	if cfg.idempotent {
		var pr api.Producer
		if err := c.do(ctx, call{method: "POST", path: "/v1/producers", idempotent: true}, &pr); err != nil {
			return nil, fmt.Errorf("client: allocate a producer id: %w", err)
		}
		p.pid = pr.ProducerID
	}
	p.senders.Add(1)
	go p.sendLoop()
	return p, nil
}

func recordSize(r *Record) int {
	n := 16 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 4 + len(h.Key) + len(h.Value)
	}
	return n
}

// Produce queues a record and returns its future. It blocks while the
// buffer is full. A record that is not Pinned goes where Kafka's
// partitioner puts its key, or, without a key, to the same partition as the
// other unkeyed records of its batch.
func (p *Producer) Produce(ctx context.Context, r Record) *Future {
	size := recordSize(&r)
	if int64(size) > p.maxRecord {
		return p.reject(r, fmt.Errorf("%w (%d bytes)", ErrRecordTooLarge, size))
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return p.reject(r, ErrProducerClosed)
		}
		if p.fatal != nil {
			err := p.fatal
			p.mu.Unlock()
			return p.reject(r, err)
		}
		if p.heldBytes == 0 || p.heldBytes+size <= p.cfg.bufferBytes {
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return p.reject(r, ctx.Err())
		}
	}
	defer p.mu.Unlock()
	if time.Since(p.refreshed) > p.cfg.metadataMaxAge && !p.refreshing {
		p.refreshing = true
		go p.refreshMetadata()
	}
	part := r.Partition
	switch {
	case r.Pinned && (part < 0 || part >= p.partitions):
		return p.reject(r, fmt.Errorf("client: topic %s has partitions 0..%d, not %d", p.topic, p.partitions-1, part))
	case r.Pinned:
	case r.Key != nil:
		part = kafkahash.Partition(r.Key, p.partitions)
	default:
		if p.sticky < 0 {
			p.sticky = rand.Int32N(p.partitions)
		}
		part = p.sticky
	}
	r.Partition, r.Pinned, r.Topic = part, true, p.topic
	pe := &pending{rec: r, size: size, fut: &Future{done: make(chan struct{})}}
	p.buf[part] = append(p.buf[part], pe)
	p.bufBytes += size
	p.heldBytes += size
	p.bufRecords++
	p.outstanding++
	if p.bufBytes >= p.cfg.batchBytes || p.bufRecords >= maxRequestRecords {
		p.sealLocked()
	} else if p.linger == nil {
		p.linger = time.AfterFunc(p.cfg.linger, func() {
			p.mu.Lock()
			p.linger = nil
			p.sealLocked()
			p.mu.Unlock()
		})
	}
	return pe.fut
}

// refreshMetadata reads the topic's partition count again.
func (p *Producer) refreshMetadata() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := p.c.Topic(ctx, p.topic)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshing = false
	if err != nil {
		return // try again on a later record
	}
	p.refreshed = time.Now()
	p.learnPartitionsLocked(t.Partitions)
}

// learnPartitionsLocked takes a partition count the broker reported.
// Counts only grow; records already batched keep their partition, as with
// Kafka's producer.
func (p *Producer) learnPartitionsLocked(n int32) {
	if n > p.partitions {
		p.partitions = n
		p.sticky = -1
	}
}

// maxRequestRecords is the server's limit of records per request.
const maxRequestRecords = 1000

// maxRequestBytes keeps a request's record payload under the server's
// default request limit, leaving room for JSON framing.
const maxRequestBytes = 4 << 20

// maxUnresolvedParts bounds how far a partition's batches may run ahead of
// its oldest unresolved batch (that one included). The server remembers a
// producer's last 5 batches per partition (as Kafka does): a batch retried
// after its answer was lost is then always still among them, so it is
// recognized as a duplicate instead of failing out of order — even when
// the batches after it were acknowledged in the meantime.
const maxUnresolvedParts = 5

// sealLocked turns what is buffered into requests (each within the
// request limits) and queues them. Partitions with maxUnresolvedParts
// batches outstanding keep their records buffered until one settles.
func (p *Producer) sealLocked() {
	if p.linger != nil {
		p.linger.Stop()
		p.linger = nil
	}
	if p.fatal != nil {
		p.failAllLocked()
		return
	}
	var req []*part
	n, bytes := 0, 0
	flush := func() {
		if len(req) > 0 {
			p.enqueueLocked(req)
			req, n, bytes = nil, 0, 0
		}
	}
	p.blocked = false
	for _, pt := range slices.Sorted(maps.Keys(p.buf)) {
		recs := p.buf[pt]
		for len(recs) > 0 {
			// The server remembers a producer's last maxUnresolvedParts
			// batches per partition. A batch answered with a lost response
			// must still be among them when it is retried, even if later
			// batches succeeded meanwhile: so no batch is sent that far
			// beyond the oldest unresolved one.
			if u := p.unresolved[pt]; len(u) > 0 && p.nextIdx[pt]-u[0].idx >= maxUnresolvedParts {
				p.blocked = true
				break
			}
			// Until the server knows this producer on the partition (its
			// first batch committed), a second batch could overtake the
			// first on another connection and be refused as out of order:
			// the server cannot hold it back for a batch it has not seen.
			if p.cfg.idempotent && !p.acked[pt] && len(p.unresolved[pt]) > 0 {
				p.blocked = true
				break
			}
			take := 0
			for take < len(recs) && n+take < maxRequestRecords && (bytes == 0 && take == 0 || bytes+recs[take].size <= maxRequestBytes) {
				bytes += recs[take].size
				take++
			}
			if take == 0 {
				flush()
				continue
			}
			pa := &part{partition: pt, idx: p.nextIdx[pt], seq: p.nextSeq[pt], recs: recs[:take:take], sending: true}
			p.nextSeq[pt] = seqAdd(p.nextSeq[pt], take)
			p.nextIdx[pt]++
			p.unresolved[pt] = append(p.unresolved[pt], pa)
			req = append(req, pa)
			n += take
			for _, pe := range recs[:take] {
				p.bufBytes -= pe.size
			}
			p.bufRecords -= take
			recs = recs[take:]
			if n >= maxRequestRecords {
				flush()
			}
		}
		if len(recs) == 0 {
			delete(p.buf, pt)
		} else {
			p.buf[pt] = recs
		}
	}
	flush()
	p.sticky = -1
}

func seqAdd(seq int32, n int) int32 { return int32((int64(seq) + int64(n)) % (1 << 31)) }

func (p *Producer) enqueueLocked(req []*part) {
	p.queue = append(p.queue, req)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// sendLoop sends queued requests, at most maxInFlight at a time, until the
// producer is closed and nothing is left.
func (p *Producer) sendLoop() {
	defer p.senders.Done()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			done := p.closed && p.outstanding == 0
			p.mu.Unlock()
			if done {
				return
			}
			<-p.wake
			continue
		}
		req := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		p.sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.send(req)
			<-p.sem
		}()
	}
}

// send sends one request (one attempt) and settles its parts.
func (p *Producer) send(req []*part) {
	now := time.Now()
	body := produceBody{}
	p.mu.Lock()
	// behind: some part of the request was sent while an earlier batch of
	// its partition was unresolved. The server may then see a sequence gap
	// (it decides before the earlier batch commits, even if that answer
	// reaches us first), and since it appends a request atomically, the gap
	// fails every partition in the request: all of them are retried.
	behind := false
	for _, pa := range req {
		behind = behind || p.unresolved[pa.partition][0] != pa
		if pa.firstSent.IsZero() {
			pa.firstSent = now
		}
		pa.attempts++
		for _, pe := range pa.recs {
			body.Records = append(body.Records, toWire(&pe.rec, true))
		}
	}
	if p.cfg.idempotent {
		body.Producer = &api.ProducerEpoch{ID: p.pid}
		body.BaseSequences = map[string]int32{}
		for _, pa := range req {
			body.BaseSequences[strconv.Itoa(int(pa.partition))] = pa.seq
		}
	}
	p.mu.Unlock()
	data, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	status, resp, hdr, err := p.c.send(ctx, call{method: "POST", path: "/v1/topics/" + esc(p.topic) + "/records"}, data)
	cancel()

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		for _, pa := range req {
			p.settleErr(pa, err, behind)
		}
	} else if status != http.StatusOK && status != http.StatusMultiStatus {
		prob := decodeProblem(status, resp, hdr)
		for _, pa := range req {
			p.settleErr(pa, prob, behind)
		}
	} else {
		var out api.ProduceResponse
		if jerr := json.Unmarshal(resp, &out); jerr != nil || len(out.Results) != len(body.Records) {
			err := fmt.Errorf("client: malformed produce answer (%d results for %d records): %v", len(out.Results), len(body.Records), jerr)
			for _, pa := range req {
				p.settleErr(pa, &TransportError{Err: err}, behind)
			}
		} else {
			p.learnPartitionsLocked(out.PartitionCount)
			p.refreshed = time.Now()
			i := 0
			for _, pa := range req {
				results := out.Results[i : i+len(pa.recs)]
				i += len(pa.recs)
				p.settleResults(pa, results, behind)
			}
		}
	}
	p.scheduleRetriesLocked()
	if p.blocked {
		p.sealLocked() // settled batches made room for buffered records
	}
	p.notifyLocked()
}

func (p *Producer) settleResults(pa *part, results []api.RecordResult, behind bool) {
	for _, r := range results {
		if r.Error != nil {
			prob := api.NewProblem(r.Error.Code, r.Error.Message)
			prob.Status, prob.Retryable = r.Error.Status, r.Error.Retryable
			prob.SideEffect = api.SideEffectMaybe
			p.settleErr(pa, prob, behind)
			return
		}
	}
	for j, pe := range pa.recs {
		r := results[j]
		d := Delivery{Partition: pa.partition}
		if r.Offset != nil {
			d.Offset = *r.Offset
		}
		if r.Timestamp != nil {
			d.Timestamp = time.UnixMilli(*r.Timestamp)
		}
		p.complete(pe, d, nil)
	}
	p.acked[pa.partition] = true
	p.resolveLocked(pa)
}

// settleErr decides what a failed part does: retry (now or when its
// partition's earlier parts are settled), or fail. behind: some part of
// the same request waits for an earlier batch (see send).
func (p *Producer) settleErr(pa *part, err error, behind bool) {
	pa.sending = false
	var prob *api.Problem
	isProblem := errors.As(err, &prob)
	var transport *TransportError
	unknown := errors.As(err, &transport) || (isProblem && prob.SideEffect == api.SideEffectMaybe)
	earlier := behind || p.unresolved[pa.partition][0] != pa
	retry := false
	switch {
	case time.Since(pa.firstSent) > p.cfg.deliveryTimeout:
		err = fmt.Errorf("client: delivery timeout (%s) after %d attempts: %w", p.cfg.deliveryTimeout, pa.attempts, err)
	case isProblem && prob.Code == api.CodeOutOfOrderSequence && earlier:
		// An earlier batch of this partition failed first: resend after
		// it, without backing off further (it is not this batch's fault).
		retry = true
		pa.attempts = max(pa.attempts-1, 1)
	case p.cfg.idempotent && IsRetryable(err):
		retry = true // duplicates are detected server-side
	case !p.cfg.idempotent && IsRetryable(err) && !unknown:
		retry = true
	}
	if retry && p.fatal == nil {
		pa.retry = true
		return
	}
	if p.cfg.idempotent && p.fatal == nil {
		// The partition's sequence is broken: Kafka treats this as fatal
		// for an idempotent producer. Fail everything still pending.
		p.fatal = fmt.Errorf("client: producer failed: %w", err)
	}
	p.failPart(pa, err)
	if p.fatal != nil {
		p.failAllLocked()
	}
}

func (p *Producer) failPart(pa *part, err error) {
	for _, pe := range pa.recs {
		p.complete(pe, Delivery{}, err)
	}
	p.resolveLocked(pa)
}

// failAllLocked fails, with the fatal error, every record buffered or
// waiting for a retry (requests on the wire settle when they answer).
func (p *Producer) failAllLocked() {
	for _, recs := range p.buf {
		for _, pe := range recs {
			p.complete(pe, Delivery{}, p.fatal)
		}
	}
	clear(p.buf)
	p.bufBytes, p.bufRecords = 0, 0
	for _, list := range p.unresolved {
		for _, pa := range slices.Clone(list) {
			if !pa.sending {
				p.failPart(pa, p.fatal)
			}
		}
	}
}

func (p *Producer) complete(pe *pending, d Delivery, err error) {
	pe.fut.d, pe.fut.err = d, err
	close(pe.fut.done)
	p.outstanding--
	p.heldBytes -= pe.size
	if p.cfg.onDelivery != nil {
		p.cfg.onDelivery(pe.rec, d, err)
	}
}

func (p *Producer) resolveLocked(pa *part) {
	pa.done = true
	list := p.unresolved[pa.partition]
	if i := slices.Index(list, pa); i >= 0 {
		p.unresolved[pa.partition] = slices.Delete(list, i, i+1)
	}
	if len(p.unresolved[pa.partition]) == 0 {
		delete(p.unresolved, pa.partition)
	}
}

// scheduleRetriesLocked resends, per partition, the oldest outstanding
// batch if it failed retryably and is not on its way already. Later
// batches wait their turn: sent earlier, they would only fail out of order.
func (p *Producer) scheduleRetriesLocked() {
	var reqs [][]*part
	var req []*part
	n, bytes, maxAttempts := 0, 0, 0
	for _, pt := range slices.Sorted(maps.Keys(p.unresolved)) {
		pa := p.unresolved[pt][0]
		if !pa.retry || pa.sending {
			continue
		}
		size := 0
		for _, pe := range pa.recs {
			size += pe.size
		}
		// Each part fits a request on its own; several are packed together
		// only while the request stays within the server's limits.
		if len(req) > 0 && (n+len(pa.recs) > maxRequestRecords || bytes+size > maxRequestBytes) {
			reqs = append(reqs, req)
			req, n, bytes = nil, 0, 0
		}
		pa.retry, pa.sending = false, true
		req = append(req, pa)
		n, bytes = n+len(pa.recs), bytes+size
		maxAttempts = max(maxAttempts, pa.attempts)
	}
	if len(req) > 0 {
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		return
	}
	delay := retry.Policy{Base: 25 * time.Millisecond, Max: 5 * time.Second}.Delay(maxAttempts)
	time.AfterFunc(delay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, req := range reqs {
			p.enqueueLocked(req)
		}
	})
}

func (p *Producer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Flush sends everything buffered and waits until every record produced so
// far is delivered or has failed.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.sealLocked()
	for p.outstanding > 0 {
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
	err := p.fatal
	p.mu.Unlock()
	return err
}

// Close flushes and stops the producer.
func (p *Producer) Close(ctx context.Context) error {
	err := p.Flush(ctx)
	p.mu.Lock()
	p.closed = true
	select {
	case p.wake <- struct{}{}:
	default:
	}
	p.mu.Unlock()
	if err == nil {
		p.senders.Wait()
	}
	return err
}
