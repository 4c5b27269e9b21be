package offsets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/retry"
)

// Store is Streambed's metadata layer: topics, partition heads, the segment
// index, producer and writer fencing, compactor leases, object references
// and consumer-group state, all on a Table. It is safe for concurrent use,
// including by many processes sharing one Table: every decision is a
// conditional write, retried with a fresh read when it loses a race.
type Store struct {
	t           Table
	now         func() time.Time
	log         *slog.Logger
	retry       retry.Policy
	producerTTL time.Duration
	idemTTL     time.Duration
	idemMu      sync.Mutex
	idemSecret  []byte
	// idMu guards the leased block of producer ids [idNext, idLimit).
	idMu            sync.Mutex
	idNext, idLimit int64
	gcGrace         time.Duration
	maxCommitAge    time.Duration
}

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now (tests inject clocks for retention and TTLs).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithLogger sets the logger for retries and anomalies.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithRetry bounds the optimistic-concurrency loop: at most attempts tries,
// with full-jitter exponential backoff bounded from base up to max between
// them (default 12 tries, 4 ms to 400 ms: about 2.5 s in all at worst).
// The adapter's own transport retries run inside each try.
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(s *Store) { s.retry = retry.Policy{Attempts: attempts, Base: base, Max: max} }
}

// WithProducerStateTTL sets how long an idle producer's state is kept
// (default 7 days, Kafka's transactional.id.expiration.ms).
func WithProducerStateTTL(d time.Duration) Option { return func(s *Store) { s.producerTTL = d } }

// WithGCGrace sets how long an unreferenced object is kept before deletion
// (default 1 hour: longer than any reader's cached index entry lives).
func WithGCGrace(d time.Duration) Option { return func(s *Store) { s.gcGrace = d } }

// WithMaxCommitAge sets how old an uploaded object may be when a commit or
// swap first references it (default 15 minutes). Keep it well below the
// orphan sweep's deadline (1 hour by default).
func WithMaxCommitAge(d time.Duration) Option { return func(s *Store) { s.maxCommitAge = d } }

// New returns a Store on t.
func New(t Table, opts ...Option) *Store {
	s := &Store{
		t:            t,
		now:          time.Now,
		log:          slog.New(slog.DiscardHandler),
		retry:        retry.Policy{Attempts: 12, Base: 4 * time.Millisecond, Max: 400 * time.Millisecond},
		producerTTL:  7 * 24 * time.Hour,
		idemTTL:      24 * time.Hour,
		gcGrace:      time.Hour,
		maxCommitAge: 15 * time.Minute,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Table returns the underlying table (for tools such as fsck).
func (s *Store) Table() Table { return s.t }

func (s *Store) nowMs() int64 { return s.now().UnixMilli() }

// retryable reports whether err is a lost race or throttling, which a fresh
// read and another attempt can resolve.
func retryable(err error) bool {
	return errors.Is(err, ErrConditionFailed) || errors.Is(err, ErrConflict) || errors.Is(err, ErrThrottled)
}

// loop runs attempt until it reports done or fails with a non-retryable
// error, sleeping between attempts. Attempts get a fresh read each time, so
// they must not carry state across calls except through their closure.
func (s *Store) loop(ctx context.Context, what string, attempt func() (done bool, err error)) error {
	var last error
	for i := 0; i < max(s.retry.Attempts, 1); i++ {
		if i > 0 {
			if err := s.retry.Sleep(ctx, i); err != nil {
				return err
			}
		}
		done, err := attempt()
		if err == nil && done {
			return nil
		}
		if err != nil && !retryable(err) {
			return err
		}
		last = err
	}
	s.log.Warn("metadata retries exhausted", "op", what, "attempts", s.retry.Attempts, "err", last)
	return fmt.Errorf("%w: %s: gave up after %d attempts: %v", ErrUnavailable, what, s.retry.Attempts, last)
}

// get reads one item and decodes it into v when present.
func (s *Store) get(ctx context.Context, k Key, v validator) (Item, error) {
	items, err := s.t.Get(ctx, k)
	if err != nil {
		return Item{}, err
	}
	it := items[0]
	if it.Exists() {
		if err := decode(it, v); err != nil {
			return it, err
		}
	}
	return it, nil
}

// Tx collects ops to write atomically.
type tx struct{ ops []Op }

func (t *tx) put(k Key, expect int64, v any) { t.ops = append(t.ops, Put(k, expect, encode(v))) }
func (t *tx) putTTL(k Key, expect int64, v any, ttl int64) {
	op := Put(k, expect, encode(v))
	op.TTL = ttl
	t.ops = append(t.ops, op)
}
func (t *tx) del(k Key, expect int64)   { t.ops = append(t.ops, Delete(k, expect)) }
func (t *tx) check(k Key, expect int64) { t.ops = append(t.ops, Check(k, expect)) }
