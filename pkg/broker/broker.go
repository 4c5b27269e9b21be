// Package broker is Streambed's logic: produce, fetch, long polling and
// topic administration over the two ports (offsets.Store for metadata,
// segments.Bucket for objects). It imports no AWS and no HTTP code; the
// same Broker serves `streambed serve` and the Lambda functions.
package broker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// Limits are the broker's request limits.
type Limits struct {
	MaxRecordsPerRequest int
	MaxRequestBytes      int // records' payload per produce request
	MaxResponseBytes     int
	MaxWait              time.Duration
	MaxHeadersPerRecord  int
	MaxHeaderNameBytes   int
	// MaxFutureTimestamp bounds how far ahead of the broker's clock a
	// create-time timestamp may be (Kafka 4.0's
	// log.message.timestamp.after.max.ms default).
	MaxFutureTimestamp time.Duration
}

// DefaultLimits returns the defaults: 1000 records and 5 MiB per
// request (Lambda's 6 MB payload), 5 MiB buffered responses, 20 s long polls.
func DefaultLimits() Limits {
	return Limits{
		MaxRecordsPerRequest: 1000,
		MaxRequestBytes:      5 << 20,
		MaxResponseBytes:     5 << 20,
		MaxWait:              20 * time.Second,
		MaxHeadersPerRecord:  64,
		MaxHeaderNameBytes:   256,
		MaxFutureTimestamp:   time.Hour,
	}
}

// Config configures a Broker.
type Config struct {
	Limits Limits
	// Compression of the batches it encodes (default segments.DefaultCompression, gzip).
	Compression *segments.Compression
	// TopicCacheTTL bounds how stale cached topic metadata may be (5 s).
	TopicCacheTTL time.Duration
	// BatchCacheBytes bounds the cache of stored batches, raw and decoded
	// (64 MiB).
	BatchCacheBytes int64
	// PollMin/PollMax bound the interval at which the heads of partitions
	// long polls wait on are read again, to see appends made by other
	// processes.
	PollMin, PollMax time.Duration
	// Flush bounds group commit (see FlushConfig).
	Flush FlushConfig
	// SoleWriter says no other process writes to this storage (the
	// embedded store, which one process holds): long polls then wait for
	// local commits only, and cost the store nothing while idle.
	SoleWriter bool
	// Now is the clock of record timestamps, retention and group
	// sessions (tests inject one). Waits and cache ages use real time.
	Now    func() time.Time
	Logger *slog.Logger
}

// Broker implements produce and fetch. Safe for concurrent use.
type Broker struct {
	store  *offsets.Store
	bucket segments.Bucket
	codec  *segments.Codec
	limits Limits
	comp   segments.Compression
	now    func() time.Time
	log    *slog.Logger
	cfg    Config

	topicsMu sync.Mutex
	topics   map[string]cachedTopic

	batches *lru[*cachedBatch]
	// assignments caches groups' target assignments (immutable, by tag).
	assignments *lru[map[string][]offsets.TopicPartitions]
	index       indexCache
	logStarts   logStartCache
	watch       *watchers
	flush       flusher
	seqs        *seqGate
	commitMu    [256]sync.Mutex
	draining    chan struct{}
	drainOne    sync.Once
}

type cachedTopic struct {
	t       offsets.Topic
	fetched time.Time
}

// New returns a Broker over store and bucket.
func New(store *offsets.Store, bucket segments.Bucket, cfg Config) *Broker {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	comp := segments.DefaultCompression
	if cfg.Compression != nil {
		comp = *cfg.Compression
	}
	if cfg.TopicCacheTTL == 0 {
		cfg.TopicCacheTTL = 5 * time.Second
	}
	if cfg.BatchCacheBytes == 0 {
		cfg.BatchCacheBytes = 64 << 20
	}
	if cfg.PollMin == 0 {
		cfg.PollMin = 50 * time.Millisecond
	}
	if cfg.PollMax == 0 {
		cfg.PollMax = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		store: store, bucket: bucket, codec: segments.NewCodec(), limits: cfg.Limits, comp: comp,
		now: cfg.Now, log: cfg.Logger, cfg: cfg,
		topics:      map[string]cachedTopic{},
		batches:     newLRU[*cachedBatch](cfg.BatchCacheBytes),
		assignments: newLRU[map[string][]offsets.TopicPartitions](16 << 20),
		seqs:        newSeqGate(time.Second),
		draining:    make(chan struct{}),
	}
	b.watch = newWatchers(b)
	b.flush = flusher{b: b, cfg: cfg.Flush.withDefaults()}
	b.flush.slots = make(chan struct{}, b.flush.cfg.MaxInFlight)
	b.flush.arrived = make(chan struct{}, 1)
	return b
}

// Limits returns the broker's limits.
func (b *Broker) Limits() Limits { return b.limits }

// Store and Bucket expose the ports (for tools: fsck, compaction, tests).
func (b *Broker) Store() *offsets.Store     { return b.store }
func (b *Broker) Bucket() segments.Bucket   { return b.bucket }
func (b *Broker) Codec() *segments.Codec    { return b.codec }
func (b *Broker) Draining() <-chan struct{} { return b.draining }

// Drain tells long polls and streams to finish now (graceful shutdown);
// produce requests in flight are unaffected.
func (b *Broker) Drain() { b.drainOne.Do(func() { close(b.draining) }) }

// Topic returns a topic's metadata, from a short-lived cache.
func (b *Broker) Topic(ctx context.Context, name string) (offsets.Topic, error) {
	b.topicsMu.Lock()
	c, ok := b.topics[name]
	b.topicsMu.Unlock()
	if ok && time.Now().Sub(c.fetched) < b.cfg.TopicCacheTTL {
		return c.t, nil
	}
	return b.refreshTopic(ctx, name)
}

func (b *Broker) refreshTopic(ctx context.Context, name string) (offsets.Topic, error) {
	t, err := b.store.Topic(ctx, name)
	b.topicsMu.Lock()
	defer b.topicsMu.Unlock()
	if err != nil {
		delete(b.topics, name)
		return offsets.Topic{}, err
	}
	b.topics[name] = cachedTopic{t: t, fetched: time.Now()}
	return t, nil
}

func (b *Broker) forgetTopic(name string) {
	b.topicsMu.Lock()
	delete(b.topics, name)
	b.topicsMu.Unlock()
}

// topicPartition returns the topic, refreshing the cache once if p looks
// out of range (the partition count may have grown).
func (b *Broker) topicPartition(ctx context.Context, name string, p int32) (offsets.Topic, error) {
	t, err := b.Topic(ctx, name)
	if err != nil {
		return t, err
	}
	if p >= t.Partitions {
		if t, err = b.refreshTopic(ctx, name); err != nil {
			return t, err
		}
	}
	if p < 0 || p >= t.Partitions {
		return t, fmt.Errorf("%w: topic %s has partitions 0..%d, not %d", offsets.ErrUnknownPartition, name, t.Partitions-1, p)
	}
	return t, nil
}

// CreateTopic creates a topic.
func (b *Broker) CreateTopic(ctx context.Context, name string, partitions int32, cfg offsets.TopicConfig) (offsets.Topic, error) {
	t, err := b.store.CreateTopic(ctx, name, partitions, cfg)
	if err == nil {
		b.forgetTopic(name)
	}
	return t, err
}

// UpdateTopic grows partitions and/or replaces the config.
func (b *Broker) UpdateTopic(ctx context.Context, name string, partitions *int32, cfg *offsets.TopicConfig) (offsets.Topic, error) {
	defer b.forgetTopic(name)
	t, err := b.store.Topic(ctx, name)
	if err != nil {
		return t, err
	}
	if partitions != nil {
		if t, err = b.store.IncreasePartitions(ctx, name, *partitions); err != nil {
			return t, err
		}
	}
	if cfg != nil {
		if t, err = b.store.AlterTopicConfig(ctx, name, *cfg); err != nil {
			return t, err
		}
	}
	return t, nil
}

// DeleteTopic deletes a topic.
func (b *Broker) DeleteTopic(ctx context.Context, name string) error {
	defer b.forgetTopic(name)
	return b.store.DeleteTopic(ctx, name)
}

// ListTopics lists topics by name.
func (b *Broker) ListTopics(ctx context.Context, after string, limit int) ([]offsets.Topic, string, error) {
	return b.store.ListTopics(ctx, after, limit)
}

// Partitions returns partition states (all partitions if none are named).
func (b *Broker) Partitions(ctx context.Context, topic string, parts ...int32) ([]offsets.PartitionState, error) {
	t, err := b.Topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if t, err = b.topicPartition(ctx, topic, p); err != nil {
			return nil, err
		}
	}
	return b.store.Partitions(ctx, t, parts...)
}

// AllocateProducerID hands out a fresh idempotent producer id.
func (b *Broker) AllocateProducerID(ctx context.Context) (int64, error) {
	return b.store.AllocateProducerID(ctx)
}

// SetFenceToken sets a partition's writer fencing token.
func (b *Broker) SetFenceToken(ctx context.Context, topic string, p int32, current *string, token string) error {
	t, err := b.topicPartition(ctx, topic, p)
	if err != nil {
		return err
	}
	return b.store.SetFenceToken(ctx, t, p, current, token)
}

// lockKeys serializes commits to the same partitions (partKeys) within this
// process, so concurrent requests of one server do not lose optimistic
// races to each other (other processes are still handled by the store's
// conditions). Stripes are locked in order, so there is no deadlock.
func (b *Broker) lockKeys(keys []string) func() {
	stripes := make([]int, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k))
		stripes = append(stripes, int(h.Sum32()%uint32(len(b.commitMu))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		b.commitMu[s].Lock()
	}
	return func() {
		for i := len(stripes) - 1; i >= 0; i-- {
			b.commitMu[stripes[i]].Unlock()
		}
	}
}

// IsNotFound reports whether err means a topic or partition does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, offsets.ErrUnknownTopic) || errors.Is(err, offsets.ErrUnknownPartition)
}
