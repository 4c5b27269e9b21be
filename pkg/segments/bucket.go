package segments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// Bucket is the object-store port: the only object operations Streambed
// needs. Adapters must give these guarantees (segmentstest checks them):
//
//   - Put is create-only, like S3's PutObject with If-None-Match: *. If key
//     exists, Put returns ErrAlreadyExists and the stored object is
//     unchanged; of concurrent Puts of one key exactly one succeeds. A
//     successful Put is durable and immediately visible to GetRange, Stat and
//     List; a failed or interrupted one leaves no partial object.
//   - PutStream is Put of an object read from body, with the same
//     guarantees, holding at most a bounded part of it in memory. With size
//     >= 0 the body must hold exactly size bytes (one that ends early or
//     runs long stores nothing); with size < 0 the object is whatever body
//     yields up to io.EOF. A body that fails stores nothing.
//   - GetRange returns length bytes from off (length < 0: to the end). A
//     range running past the end is cut short at the end; off at or beyond
//     the size of a non-empty object is ErrInvalidRange. A missing key is
//     ErrNotFound.
//   - Reader streams the same range GetRange reads, with the same rules;
//     the caller closes it, and may close it before the end.
//   - Delete is idempotent: deleting a missing key succeeds.
//   - List yields the objects whose keys start with prefix and sort after
//     startAfter, in ascending byte order of key, across as many pages as
//     the backend needs. Only the compactor lists; it is never on the
//     produce or fetch path.
//
// A request the backend refused for a reason no retry can fix (access
// denied, a missing bucket, a full or read-only disk) wraps ErrRefused; it
// stored nothing. Any other error is transient from the caller's point of
// view (the adapter has already retried what it sensibly can).
type Bucket interface {
	Put(ctx context.Context, key string, body []byte) error
	PutStream(ctx context.Context, key string, size int64, body io.Reader) error
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	Reader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error]
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Bucket errors. Adapters wrap them (errors.Is works) with the key.
var (
	ErrNotFound      = errors.New("object not found")
	ErrAlreadyExists = errors.New("object already exists")
	ErrInvalidRange  = errors.New("invalid range")
	ErrInvalidKey    = errors.New("invalid object key")
	ErrRefused       = errors.New("refused by the object store")
)

// MaxKeyLen is the longest key every backend accepts (S3 allows 1024 bytes).
const MaxKeyLen = 1024

// ValidateKey enforces the key rules all adapters share, so a key that works
// on one backend works on every other: 1-1024 bytes of printable ASCII,
// '/'-separated non-empty segments, no "." or ".." segments, no leading
// or trailing '/'.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e || c == '\\' {
			return fmt.Errorf("%w %q: byte %d (0x%02x) is not allowed", ErrInvalidKey, key, i, c)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w %q: empty, '.' or '..' path segment", ErrInvalidKey, key)
		}
	}
	return nil
}

// CheckRange validates a GetRange request against an object of size bytes
// and returns the end (exclusive) of the bytes to return. Adapters that
// hold the object use it so range semantics are identical everywhere.
func CheckRange(key string, off, length, size int64) (int64, error) {
	if off < 0 || length == 0 || (off >= size && size > 0) || (size == 0 && off > 0) {
		return 0, fmt.Errorf("%w: %s: offset %d length %d of a %d-byte object", ErrInvalidRange, key, off, length, size)
	}
	end := size
	if length > 0 && length < size-off {
		end = off + length
	}
	return end, nil
}

// ErrBodySize: a PutStream body did not hold the announced size.
var ErrBodySize = errors.New("stream body does not match its size")

// ReadExactly reads a PutStream body of size bytes (size < 0: up to
// io.EOF) into memory, for adapters that store objects whole (the
// in-memory one).
func ReadExactly(body io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBodySize, err)
	}
	var one [1]byte
	if n, _ := body.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodySize, size)
	}
	return buf, nil
}
