package faults

import (
	"context"
	"io"
	"iter"
	"sync/atomic"

	"github.com/streambed/streambed/pkg/segments"
)

// BucketCounts are the object-store calls made, as S3 bills them.
type BucketCounts struct {
	Put, Get, Stat, Delete, List int64
	PutBytes, GetBytes           int64
}

// Bucket is a segments.Bucket that counts calls and injects faults.
type Bucket struct {
	next segments.Bucket
	in   *Injector

	put, get, stat, del, list atomic.Int64
	putBytes, getBytes        atomic.Int64
}

var _ segments.Bucket = (*Bucket)(nil)

// WrapBucket wraps b; in may be nil (count only).
func WrapBucket(b segments.Bucket, in *Injector) *Bucket { return &Bucket{next: b, in: in} }

// Counts returns the calls so far.
func (b *Bucket) Counts() BucketCounts {
	return BucketCounts{Put: b.put.Load(), Get: b.get.Load(), Stat: b.stat.Load(), Delete: b.del.Load(), List: b.list.Load(),
		PutBytes: b.putBytes.Load(), GetBytes: b.getBytes.Load()}
}

func (b *Bucket) Put(ctx context.Context, key string, body []byte) error {
	b.put.Add(1)
	return b.in.run(ctx, true, "put "+key, func() error {
		err := b.next.Put(ctx, key, body)
		if err == nil {
			b.putBytes.Add(int64(len(body)))
		}
		return err
	})
}

// PutStream counts as one Put (its multipart requests are the adapter's
// business).
func (b *Bucket) PutStream(ctx context.Context, key string, size int64, body io.Reader) error {
	b.put.Add(1)
	return b.in.run(ctx, true, "put "+key, func() error {
		var n atomic.Int64
		err := b.next.PutStream(ctx, key, size, &countingBody{r: body, n: &n})
		if err == nil {
			b.putBytes.Add(n.Load())
		}
		return err
	})
}

// Reader counts one Get, and the bytes actually read from the stream.
func (b *Bucket) Reader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	b.get.Add(1)
	var out io.ReadCloser
	err := b.in.run(ctx, false, "get "+key, func() error {
		var err error
		out, err = b.next.Reader(ctx, key, off, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &countingReader{countingBody{r: out, n: &b.getBytes}, out}, nil
}

// countingBody counts the bytes read through it into n.
type countingBody struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingReader struct {
	countingBody
	io.Closer
}

func (b *Bucket) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	b.get.Add(1)
	var out []byte
	err := b.in.run(ctx, false, "get "+key, func() error {
		var err error
		out, err = b.next.GetRange(ctx, key, off, length)
		b.getBytes.Add(int64(len(out)))
		return err
	})
	return out, err
}

func (b *Bucket) Stat(ctx context.Context, key string) (segments.ObjectInfo, error) {
	b.stat.Add(1)
	var out segments.ObjectInfo
	err := b.in.run(ctx, false, "stat "+key, func() error {
		var err error
		out, err = b.next.Stat(ctx, key)
		return err
	})
	return out, err
}

func (b *Bucket) Delete(ctx context.Context, key string) error {
	b.del.Add(1)
	return b.in.run(ctx, true, "delete "+key, func() error { return b.next.Delete(ctx, key) })
}

// List counts one call per page of 1000 keys, as S3 bills LIST requests.
func (b *Bucket) List(ctx context.Context, prefix, startAfter string) iter.Seq2[segments.ObjectInfo, error] {
	return func(yield func(segments.ObjectInfo, error) bool) {
		b.list.Add(1)
		if err := b.in.run(ctx, false, "list "+prefix, func() error { return nil }); err != nil {
			yield(segments.ObjectInfo{}, err)
			return
		}
		n := 0
		for info, err := range b.next.List(ctx, prefix, startAfter) {
			if n++; n%1000 == 0 {
				b.list.Add(1)
			}
			if !yield(info, err) {
				return
			}
		}
	}
}
