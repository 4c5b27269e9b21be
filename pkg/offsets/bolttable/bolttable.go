// Package bolttable is the embedded default offsets.Table: one bbolt file
// in the data directory (./data/metadata.db for `streambed serve`).
//
// bbolt gives serializable, crash-safe transactions (copy-on-write pages,
// fsync at commit), so a kill -9 never leaves a partial commit visible. All
// writes go through one goroutine that applies whatever writes are queued in
// a single bbolt transaction: each write's conditions are checked in order,
// against the effects of the writes before it, and one fsync covers the
// group. A lone writer pays one fsync; concurrent writers share them.
package bolttable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/streambed/streambed/pkg/offsets"
)

var bucketName = []byte("items")

// maxGroup bounds how many queued writes one bbolt transaction applies.
const maxGroup = 256

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("bolttable: closed")

// Table is an offsets.Table in a bbolt file.
type Table struct {
	db    *bolt.DB
	reqs  chan *writeReq
	quit  chan struct{}
	done  chan struct{}
	now   func() time.Time
	sweep time.Duration
	log   *slog.Logger
}

type writeReq struct {
	ops  []offsets.Op
	resp chan error
}

var _ offsets.Table = (*Table)(nil)

// Option configures a Table.
type Option func(*Table)

// WithSweepInterval sets how often items past their TTL are deleted
// (default 10 minutes; 0 disables).
func WithSweepInterval(d time.Duration) Option { return func(t *Table) { t.sweep = d } }

// WithClock replaces time.Now for TTL sweeps.
func WithClock(now func() time.Time) Option { return func(t *Table) { t.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(t *Table) { t.log = l } }

// Open opens (creating if needed) the table file at path. The file is
// locked: a second process opening it waits up to a second, then fails.
func Open(path string, opts ...Option) (*Table, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("bolttable: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolttable: %w", err)
	}
	t := &Table{
		db: db, reqs: make(chan *writeReq, maxGroup), quit: make(chan struct{}), done: make(chan struct{}),
		now: time.Now, sweep: 10 * time.Minute, log: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(t)
	}
	go t.writer()
	return t, nil
}

// Close stops the writer (queued writes fail with ErrClosed) and closes
// the file.
func (t *Table) Close() error {
	select {
	case <-t.quit:
		return nil
	default:
	}
	close(t.quit)
	<-t.done
	return t.db.Close()
}

func dbKey(k offsets.Key) []byte {
	b := make([]byte, 0, len(k.PK)+1+len(k.SK))
	b = append(b, k.PK...)
	b = append(b, 0)
	return append(b, k.SK...)
}

// Stored values: version uint64, ttl int64, then the item value.
func encodeValue(version, ttl int64, v []byte) []byte {
	b := make([]byte, 16, 16+len(v))
	binary.BigEndian.PutUint64(b, uint64(version))
	binary.BigEndian.PutUint64(b[8:], uint64(ttl))
	return append(b, v...)
}

func decodeValue(k offsets.Key, raw []byte) (offsets.Item, error) {
	if len(raw) < 16 {
		return offsets.Item{}, fmt.Errorf("bolttable: corrupt item %s: %d bytes", k, len(raw))
	}
	v := int64(binary.BigEndian.Uint64(raw))
	if v <= 0 {
		return offsets.Item{}, fmt.Errorf("bolttable: corrupt item %s: version %d", k, v)
	}
	return offsets.Item{Key: k, Version: v, TTL: int64(binary.BigEndian.Uint64(raw[8:])), Value: append([]byte(nil), raw[16:]...)}, nil
}

func (t *Table) Get(ctx context.Context, keys ...offsets.Key) ([]offsets.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]offsets.Item, len(keys))
	err := t.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		for i, k := range keys {
			out[i] = offsets.Item{Key: k}
			if raw := b.Get(dbKey(k)); raw != nil {
				it, err := decodeValue(k, raw)
				if err != nil {
					return err
				}
				out[i] = it
			}
		}
		return nil
	})
	return out, err
}

func (t *Table) Query(ctx context.Context, pk string, r offsets.Range, limit int) ([]offsets.Item, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var out []offsets.Item
	more := false
	from, to := dbKey(offsets.Key{PK: pk, SK: r.From}), dbKey(offsets.Key{PK: pk, SK: r.To})
	err := t.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		for k, v := c.Seek(from); k != nil && string(k) <= string(to); k, v = c.Next() {
			if limit > 0 && len(out) == limit {
				more = true
				return nil
			}
			key := offsets.Key{PK: pk, SK: string(k[len(pk)+1:])}
			it, err := decodeValue(key, v)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, more, err
}

func (t *Table) Write(ctx context.Context, ops ...offsets.Op) error {
	if err := offsets.ValidateOps(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-t.quit:
		return ErrClosed
	default:
	}
	r := &writeReq{ops: ops, resp: make(chan error, 1)}
	select {
	case t.reqs <- r:
	case <-t.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.resp:
		return err
	case <-t.done:
		// The writer stopped; it answered every request it took.
		select {
		case err := <-r.resp:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		// Queued: it may still be applied. The Table contract calls this
		// outcome ambiguous.
		return ctx.Err()
	}
}

func (t *Table) writer() {
	defer close(t.done)
	var tick <-chan time.Time
	if t.sweep > 0 {
		ticker := time.NewTicker(t.sweep)
		defer ticker.Stop()
		tick = ticker.C
	}
	batch := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case r := <-t.reqs:
			batch = append(batch[:0], r)
		drain:
			for len(batch) < maxGroup {
				select {
				case r := <-t.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			t.apply(batch)
		case <-tick:
			if err := t.sweepExpired(); err != nil {
				t.log.Warn("bolttable: TTL sweep", "err", err)
			}
		case <-t.quit:
			for {
				select {
				case r := <-t.reqs:
					r.resp <- ErrClosed
				default:
					return
				}
			}
		}
	}
}

// apply runs a group of writes in one transaction: each either applies all
// its ops or, if a condition fails, none of them.
func (t *Table) apply(batch []*writeReq) {
	results := make([]error, len(batch))
	err := t.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		for i, r := range batch {
			var fatal error
			results[i], fatal = applyOne(b, r.ops)
			if fatal != nil {
				return fatal // roll the whole group back; every write fails
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			// bbolt rolled the group back: nothing was applied, and the
			// next try meets the same disk (full, read-only).
			results[i] = fmt.Errorf("%w: bolttable: commit: %w", offsets.ErrRefused, err)
		}
		r.resp <- results[i]
	}
}

// applyOne checks a write's conditions and applies it. A failed condition
// is the write's result; fatal is a storage error that must abort the
// bbolt transaction, since some ops may already be applied.
func applyOne(b *bolt.Bucket, ops []offsets.Op) (result, fatal error) {
	versions := make([]int64, len(ops))
	for i, op := range ops {
		if raw := b.Get(dbKey(op.Key)); raw != nil {
			it, err := decodeValue(op.Key, raw)
			if err != nil {
				return err, nil
			}
			versions[i] = it.Version
		}
		if op.Expect != offsets.AnyVersion && versions[i] != op.Expect {
			return &offsets.ConditionError{Index: i, Key: op.Key}, nil
		}
	}
	for i, op := range ops {
		var err error
		switch op.Kind {
		case offsets.OpPut:
			err = b.Put(dbKey(op.Key), encodeValue(versions[i]+1, op.TTL, op.Value))
		case offsets.OpDelete:
			err = b.Delete(dbKey(op.Key))
		}
		if err != nil {
			return nil, fmt.Errorf("bolttable: %w", err)
		}
	}
	return nil, nil
}

// sweepExpired deletes items whose TTL has passed, as DynamoDB's TTL does.
func (t *Table) sweepExpired() error {
	now := t.now().Unix()
	return t.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		// Collect first: deleting through a cursor while iterating skips keys.
		var expired [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			if len(v) >= 16 {
				if ttl := int64(binary.BigEndian.Uint64(v[8:])); ttl > 0 && ttl < now {
					expired = append(expired, append([]byte(nil), k...))
				}
			}
			return nil
		})
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Sweep deletes expired items now (tests and tools).
func (t *Table) Sweep() error { return t.sweepExpired() }
