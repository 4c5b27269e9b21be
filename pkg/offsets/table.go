package offsets

import (
	"context"
	"errors"
	"fmt"
)

// Table is the port the metadata store runs on: a narrow, transactional
// item store shaped after what DynamoDB offers, so the DynamoDB adapter is
// a thin mapping and the embedded adapter (bbolt) can mirror it exactly.
// Every adapter passes offsetstest, which runs the whole Store on it.
//
// Guarantees an adapter must give:
//
//   - Items are addressed by (PK, SK) and carry a Version, which the adapter
//     maintains: absent items have Version 0, each write sets it to one more
//     than before. Value is opaque; TTL is a Unix time in seconds after which
//     the adapter may delete the item (0 = never). Expired items may still be
//     returned: callers check TTL themselves, as with DynamoDB.
//   - Get is strongly consistent and returns one Item per key, in order;
//     a missing item comes back with Version 0 and no Value.
//   - Query returns the items of one partition key whose sort keys lie in
//     [From, To] (inclusive, byte order), ascending, strongly consistent, at
//     most limit of them (limit <= 0: all), and whether more remain.
//   - Write applies all ops atomically if and only if every op's condition
//     holds, and is durable when it returns nil. It accepts at most
//     MaxWriteOps ops, at most one per key. A failed condition is a
//     *ConditionError naming the first failing op; a write that raced
//     another (DynamoDB's TransactionConflict) is ErrConflict; throttling
//     that outlasted the adapter's retries is ErrThrottled. A request the
//     backend refused for a reason no retry can fix (a malformed request,
//     access denied, a missing table, an item over the size limit, a full
//     disk) wraps ErrRefused. Those are never applied. Any other error is
//     ambiguous: the write may or may not have been applied.
//   - Adapters retry transport failures and throttling themselves, within
//     a small budget drawn from package retry; callers retry races.
type Table interface {
	Get(ctx context.Context, keys ...Key) ([]Item, error)
	Query(ctx context.Context, pk string, r Range, limit int) ([]Item, bool, error)
	Write(ctx context.Context, ops ...Op) error
}

// Key addresses an item.
type Key struct{ PK, SK string }

func (k Key) String() string { return k.PK + "/" + k.SK }

// Range is an inclusive sort-key range.
type Range struct{ From, To string }

// Prefix is the range of every sort key starting with p. Sort keys are
// printable ASCII below '~', so p+"~" bounds them.
func Prefix(p string) Range { return Range{From: p, To: p + "~"} }

// Item is a stored item.
type Item struct {
	Key
	Version int64
	Value   []byte
	TTL     int64
}

// Exists reports whether the item was present.
func (it Item) Exists() bool { return it.Version > 0 }

// OpKind is what an Op does.
type OpKind uint8

const (
	OpPut    OpKind = iota + 1 // create or replace the item
	OpDelete                   // remove the item (absent is fine if unconditional)
	OpCheck                    // only test the condition
)

// AnyVersion as Op.Expect makes an op unconditional (not allowed for OpCheck).
const AnyVersion int64 = -1

// Op is one write in a transaction. Expect is the version the item must
// have for the write to apply: 0 means it must not exist, AnyVersion means
// no condition.
type Op struct {
	Kind   OpKind
	Key    Key
	Expect int64
	Value  []byte
	TTL    int64
}

// Put returns an op that writes value if the item's version is expect.
func Put(k Key, expect int64, value []byte) Op {
	return Op{Kind: OpPut, Key: k, Expect: expect, Value: value}
}

// Delete returns an op that deletes the item if its version is expect.
func Delete(k Key, expect int64) Op { return Op{Kind: OpDelete, Key: k, Expect: expect} }

// Check returns an op that only requires the item's version to be expect.
func Check(k Key, expect int64) Op { return Op{Kind: OpCheck, Key: k, Expect: expect} }

// Limits every adapter enforces, so behaviour (and transaction splitting)
// is identical on every backend. They are DynamoDB's: 100 items per
// transaction, 400 KB per item (less room for keys and attributes).
const (
	MaxWriteOps  = 100
	MaxValueSize = 350 << 10
	MaxKeySize   = 1000
)

// Errors of the Table port.
var (
	ErrConditionFailed = errors.New("condition failed")
	ErrConflict        = errors.New("transaction conflict")
	ErrThrottled       = errors.New("throttled")
	// ErrRefused: the backend refused the request and retrying the same
	// request cannot succeed. Nothing was applied.
	ErrRefused = errors.New("refused by the metadata backend")
)

// ConditionError reports which op's condition failed.
type ConditionError struct {
	Index int // index of the failing op in the Write call
	Key   Key
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("offsets: condition failed on op %d (%s)", e.Index, e.Key)
}

func (e *ConditionError) Unwrap() error { return ErrConditionFailed }

// ValidateOps checks the shared limits; adapters call it first.
func ValidateOps(ops []Op) error {
	if len(ops) == 0 {
		return errors.New("offsets: write with no ops")
	}
	if len(ops) > MaxWriteOps {
		return fmt.Errorf("offsets: %d ops in one write, limit %d", len(ops), MaxWriteOps)
	}
	seen := make(map[Key]struct{}, len(ops))
	for i, op := range ops {
		if op.Key.PK == "" || op.Key.SK == "" || len(op.Key.PK)+len(op.Key.SK) > MaxKeySize {
			return fmt.Errorf("offsets: op %d has an invalid key %q", i, op.Key)
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("offsets: two ops on %s in one write", op.Key)
		}
		seen[op.Key] = struct{}{}
		switch op.Kind {
		case OpPut:
			if len(op.Value) > MaxValueSize {
				return fmt.Errorf("offsets: value of %s is %d bytes, limit %d", op.Key, len(op.Value), MaxValueSize)
			}
		case OpDelete:
		case OpCheck:
			if op.Expect == AnyVersion {
				return fmt.Errorf("offsets: unconditional check on %s", op.Key)
			}
		default:
			return fmt.Errorf("offsets: op %d has unknown kind %d", i, op.Kind)
		}
		if op.Expect < AnyVersion {
			return fmt.Errorf("offsets: op %d expects version %d", i, op.Expect)
		}
	}
	return nil
}
