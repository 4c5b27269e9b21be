package offsets

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// An Idempotency-Key request is remembered as one item, written in the
// same transactions as the appends it makes: the digest of the request's
// content, the partition count it was partitioned with, and the offsets
// each partition got. A retry with the same key and content finds its
// offsets there (finishing partitions an interrupted attempt left); the
// same key with other content is refused, and nothing is stored.
//
// Keys are scoped to the principal and the topic (by id, so a re-created
// topic starts afresh), and the item's key is an HMAC of them under a
// secret kept in the table: nobody can craft a key that lands on another
// caller's record.

// IdemRef addresses one Idempotency-Key's record.
type IdemRef struct{ key Key }

// Hash is a stable number derived from the reference (for choosing a
// sticky partition that a retry chooses again).
func (r IdemRef) Hash() uint64 {
	n, _ := strconv.ParseUint(r.key.PK[max(len(r.key.PK)-16, 0):], 16, 64)
	return n
}

// IdemRecord is what is remembered of an Idempotency-Key request.
type IdemRecord struct {
	Digest     string     `json:"digest"`
	Partitions int32      `json:"partitions"`
	CreatedMs  int64      `json:"created_ms"`
	Done       []IdemPart `json:"done,omitempty"`
}

// IdemPart is the offsets one partition of the request got.
type IdemPart struct {
	Partition int32 `json:"p"`
	Base      int64 `json:"base"`
	Last      int64 `json:"last"`
}

func (r *IdemRecord) validate() error {
	if r.Digest == "" || r.Partitions < 1 {
		return fmt.Errorf("idempotency record without digest or partition count")
	}
	return nil
}

func (r *IdemRecord) done(p int32) (IdemPart, bool) {
	for _, d := range r.Done {
		if d.Partition == p {
			return d, true
		}
	}
	return IdemPart{}, false
}

// Idempotent makes a commit part of an Idempotency-Key request.
type Idempotent struct {
	Ref        IdemRef
	Digest     string
	Partitions int32
}

// ErrIdempotencyKeyReused: an Idempotency-Key came back with different
// content within its lifetime.
var ErrIdempotencyKeyReused = errors.New("idempotency key reused with different content")

const idemSecretState = "idempotency-secret"

// WithIdempotencyTTL sets how long an Idempotency-Key is remembered
// (default 24 hours, as Stripe's).
func WithIdempotencyTTL(d time.Duration) Option { return func(s *Store) { s.idemTTL = d } }

// secret returns the HMAC key for idempotency references, creating it on
// first use; every process sharing the table shares it.
func (s *Store) secret(ctx context.Context) ([]byte, error) {
	s.idemMu.Lock()
	defer s.idemMu.Unlock()
	if s.idemSecret != nil {
		return s.idemSecret, nil
	}
	var out []byte
	err := s.loop(ctx, "idempotency secret", func() (bool, error) {
		st, err := s.LoadState(ctx, idemSecretState)
		if err != nil {
			return false, err
		}
		if st.Value == "" {
			var b [32]byte
			_, _ = rand.Read(b[:])
			if st, err = s.SaveState(ctx, st, hex.EncodeToString(b[:])); err != nil {
				return false, err
			}
		}
		out, err = hex.DecodeString(st.Value)
		if err != nil || len(out) != 32 {
			return false, fmt.Errorf("offsets: corrupt idempotency secret")
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.idemSecret = out
	return out, nil
}

// IdempotencyRef returns the reference of an Idempotency-Key sent by
// principal for a topic.
func (s *Store) IdempotencyRef(ctx context.Context, principal, topicID, key string) (IdemRef, error) {
	secret, err := s.secret(ctx)
	if err != nil {
		return IdemRef{}, err
	}
	m := hmac.New(sha256.New, secret)
	for _, part := range []string{principal, topicID, key} {
		fmt.Fprintf(m, "%d:%s", len(part), part)
	}
	return IdemRef{key: Key{PK: "i#" + hex.EncodeToString(m.Sum(nil)), SK: "idem"}}, nil
}

// LookupIdempotency reads what is remembered of a request, if anything
// (records past their lifetime count as absent).
func (s *Store) LookupIdempotency(ctx context.Context, ref IdemRef) (IdemRecord, bool, error) {
	var r IdemRecord
	it, err := s.get(ctx, ref.key, &r)
	if err != nil || !it.Exists() || (it.TTL > 0 && it.TTL <= s.now().Unix()) {
		return IdemRecord{}, false, err
	}
	return r, true, nil
}

// idemState is an Idempotent commit's record across the transactions of
// one attempt.
type idemState struct {
	rec     IdemRecord
	version int64
	expired bool
}

func (c *commit) readIdem(byKey map[Key]Item) (*idemState, error) {
	if c.idem == nil {
		return nil, nil
	}
	it := byKey[c.idem.Ref.key]
	st := &idemState{version: it.Version}
	if it.Exists() {
		if err := decode(it, &st.rec); err != nil {
			return nil, err
		}
		if it.TTL > 0 && it.TTL <= c.s.now().Unix() {
			// Past its lifetime, not yet swept: a fresh start.
			st.rec, st.expired = IdemRecord{}, true
		}
	}
	if st.rec.Digest == "" {
		st.rec = IdemRecord{Digest: c.idem.Digest, Partitions: c.idem.Partitions, CreatedMs: c.s.nowMs()}
	}
	return st, nil
}

// idemOp is the put of the record with the partitions of a transaction
// added.
func (c *commit) idemOp(st *idemState, added []IdemPart) Op {
	st.rec.Done = append(st.rec.Done, added...)
	slices.SortFunc(st.rec.Done, func(a, b IdemPart) int { return int(a.Partition) - int(b.Partition) })
	op := Put(c.idem.Ref.key, st.version, encode(&st.rec))
	op.TTL = c.s.now().Add(c.s.idemTTL).Unix()
	return op
}
