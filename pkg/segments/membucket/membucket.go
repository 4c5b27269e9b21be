// Package membucket is an in-memory segments.Bucket for unit tests. It keeps
// the full Bucket contract (create-only puts, range rules, ordered listing),
// but nothing survives the process: never use it as the only proof that
// code works against real storage.
package membucket

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/segments"
)

// Bucket is an in-memory segments.Bucket. The zero value is not usable; call New.
type Bucket struct {
	mu      sync.RWMutex
	objects map[string]object
	now     func() time.Time
}

type object struct {
	data     []byte
	modified time.Time
}

// Option configures a Bucket.
type Option func(*Bucket)

// WithClock sets the clock that stamps modification times (for GC tests).
func WithClock(now func() time.Time) Option { return func(b *Bucket) { b.now = now } }

// New returns an empty bucket.
func New(opts ...Option) *Bucket {
	b := &Bucket{objects: map[string]object{}, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	return b
}

var _ segments.Bucket = (*Bucket)(nil)

func (b *Bucket) Put(ctx context.Context, key string, body []byte) error {
	if err := segments.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.objects[key]; ok {
		return fmt.Errorf("%w: %s", segments.ErrAlreadyExists, key)
	}
	b.objects[key] = object{data: slices.Clone(body), modified: b.now()}
	return nil
}

func (b *Bucket) PutStream(ctx context.Context, key string, size int64, body io.Reader) error {
	if err := segments.ValidateKey(key); err != nil {
		return err
	}
	data, err := segments.ReadExactly(body, size)
	if err != nil {
		return err
	}
	return b.Put(ctx, key, data)
}

func (b *Bucket) Reader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	data, err := b.GetRange(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *Bucket) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	o, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", segments.ErrNotFound, key)
	}
	end, err := segments.CheckRange(key, off, length, int64(len(o.data)))
	if err != nil {
		return nil, err
	}
	return slices.Clone(o.data[off:end]), nil
}

func (b *Bucket) Stat(ctx context.Context, key string) (segments.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return segments.ObjectInfo{}, err
	}
	b.mu.RLock()
	o, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return segments.ObjectInfo{}, fmt.Errorf("%w: %s", segments.ErrNotFound, key)
	}
	return segments.ObjectInfo{Key: key, Size: int64(len(o.data)), Modified: o.modified}, nil
}

func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objects, key)
	b.mu.Unlock()
	return nil
}

func (b *Bucket) List(ctx context.Context, prefix, startAfter string) iter.Seq2[segments.ObjectInfo, error] {
	return func(yield func(segments.ObjectInfo, error) bool) {
		b.mu.RLock()
		var infos []segments.ObjectInfo
		for k, o := range b.objects {
			if strings.HasPrefix(k, prefix) && k > startAfter {
				infos = append(infos, segments.ObjectInfo{Key: k, Size: int64(len(o.data)), Modified: o.modified})
			}
		}
		b.mu.RUnlock()
		slices.SortFunc(infos, func(x, y segments.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
		for _, info := range infos {
			if err := ctx.Err(); err != nil {
				yield(segments.ObjectInfo{}, err)
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}
