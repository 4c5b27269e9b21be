// Package fsbucket is the embedded default segments.Bucket: objects are files
// under a root directory (./data/objects for `streambed serve`).
//
// A Put writes a temporary file, fsyncs it, and publishes it with link(2),
// which fails if the name exists: creation is atomic and create-only, and a
// crash never leaves a partial object under a real key (stale temporaries
// are removed on Open). Keys map to paths directly ("a/b" is the file b in
// directory a), so one key cannot also be a directory prefix of another
// ("a" and "a/b"); Streambed's own keys never do that, and such a Put fails
// with segments.ErrInvalidKey.
package fsbucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/streambed/streambed/pkg/segments"
)

// tmpDir holds in-flight uploads; it is a reserved top-level key segment.
const tmpDir = ".tmp"

// staleTemp is how old an orphaned temporary must be before Open removes
// it; younger ones may belong to another process sharing the directory.
const staleTemp = time.Hour

// Bucket stores objects as files under a root directory.
type Bucket struct {
	root    string
	reserve uint64
}

var _ segments.Bucket = (*Bucket)(nil)

// DefaultReserve is the free space Put leaves on the filesystem.
const DefaultReserve = 64 << 20

// Option configures a Bucket.
type Option func(*Bucket)

// WithReserve sets how much free space Put leaves on the filesystem
// (default 64 MiB; 0: none). A Put that would eat into it is refused
// (segments.ErrRefused wrapping syscall.ENOSPC) without writing, so the
// metadata store and deletions still have room on a full disk: deleting
// a topic then frees space instead of failing for lack of it (as
// Elasticsearch's flood-stage watermark blocks writes, not deletes).
func WithReserve(bytes uint64) Option { return func(b *Bucket) { b.reserve = bytes } }

// Open returns a Bucket rooted at dir, creating it if needed.
func Open(dir string, opts ...Option) (*Bucket, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, tmpDir), 0o755); err != nil {
		return nil, fmt.Errorf("fsbucket: %w", err)
	}
	b := &Bucket{root: abs, reserve: DefaultReserve}
	for _, o := range opts {
		o(b)
	}
	b.removeStaleTemps()
	return b, nil
}

// Free is the space available to the bucket's filesystem, in bytes.
func (b *Bucket) Free() (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.root, &st); err != nil {
		return 0, fmt.Errorf("fsbucket: statfs: %w", err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// checkSpace refuses a Put of n bytes that would leave less than the
// reserve free.
func (b *Bucket) checkSpace(key string, n int) error {
	if b.reserve == 0 {
		return nil
	}
	free, err := b.Free()
	if err != nil {
		return nil // cannot tell: let the write itself find out
	}
	if free < b.reserve+uint64(n)+4096 {
		return fmt.Errorf("%w: fsbucket: %s: %d bytes free, %d reserved for metadata and deletions: %w", segments.ErrRefused, key, free, b.reserve, syscall.ENOSPC)
	}
	return nil
}

// Root is the directory objects live in.
func (b *Bucket) Root() string { return b.root }

func (b *Bucket) removeStaleTemps() {
	entries, err := os.ReadDir(filepath.Join(b.root, tmpDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = os.Remove(filepath.Join(b.root, tmpDir, e.Name()))
		}
	}
}

func (b *Bucket) path(key string) (string, error) {
	if err := segments.ValidateKey(key); err != nil {
		return "", err
	}
	if key == tmpDir || strings.HasPrefix(key, tmpDir+"/") {
		return "", fmt.Errorf("%w %q: %q is reserved by the filesystem bucket", segments.ErrInvalidKey, key, tmpDir)
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

func (b *Bucket) Put(ctx context.Context, key string, body []byte) error {
	return b.PutStream(ctx, key, int64(len(body)), bytes.NewReader(body))
}

func (b *Bucket) PutStream(ctx context.Context, key string, size int64, body io.Reader) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.checkSpace(key, int(min(max(size, 0), math.MaxInt))); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(b.root, tmpDir), "put-*")
	if err != nil {
		return b.fail(key, err)
	}
	defer os.Remove(tmp.Name())
	var src io.Reader = &ctxReader{ctx, body}
	if size >= 0 {
		src = io.LimitReader(src, size+1)
	}
	var dst io.Writer = tmp
	if size < 0 && b.reserve > 0 {
		// The size is not known up front: keep checking as it grows.
		dst = &spaceWriter{w: tmp, check: func() error { return b.checkSpace(key, 0) }}
	}
	n, err := io.Copy(dst, src)
	if err != nil {
		tmp.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errBody) {
			return fmt.Errorf("%w: %v", segments.ErrBodySize, err)
		}
		return b.fail(key, err)
	}
	if size >= 0 && n != size {
		tmp.Close()
		return fmt.Errorf("%w: %s: %d bytes, announced %d", segments.ErrBodySize, key, n, size)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return b.fail(key, err)
	}
	if err := tmp.Close(); err != nil {
		return b.fail(key, err)
	}
	// A concurrent Delete may remove the (empty) parent directory between
	// MkdirAll and Link; retry a few times.
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return b.pathErr(key, err)
		}
		err = os.Link(tmp.Name(), p)
		if err == nil {
			break
		}
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Stat(p); serr == nil && fi.IsDir() {
				return fmt.Errorf("%w %q: a directory of other keys has that name", segments.ErrInvalidKey, key)
			}
			return fmt.Errorf("%w: %s", segments.ErrAlreadyExists, key)
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt >= 5 {
			return b.pathErr(key, err)
		}
	}
	return syncDir(filepath.Dir(p))
}

func (b *Bucket) pathErr(key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENAMETOOLONG) {
		return fmt.Errorf("%w %q: %v", segments.ErrInvalidKey, key, err)
	}
	return b.fail(key, err)
}

// fail wraps an I/O error, marking those no retry can fix now (a full or
// read-only disk, no permission) as refusals. The cause stays in the chain
// (errors.Is(err, syscall.ENOSPC) works).
func (b *Bucket) fail(key string, err error) error {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: fsbucket: %s: %w", segments.ErrRefused, key, err)
		}
	}
	return fmt.Errorf("fsbucket: %s: %w", key, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsbucket: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsbucket: sync dir: %w", err)
	}
	return nil
}

func (b *Bucket) open(key string) (*os.File, fs.FileInfo, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil, fmt.Errorf("%w: %s", segments.ErrNotFound, key)
		}
		return nil, nil, fmt.Errorf("fsbucket: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("fsbucket: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s", segments.ErrNotFound, key)
	}
	return f, fi, nil
}

// spaceWriter runs check every spaceCheckEvery bytes written.
type spaceWriter struct {
	w     io.Writer
	check func() error
	since int
}

const spaceCheckEvery = 8 << 20

func (s *spaceWriter) Write(p []byte) (int, error) {
	if s.since += len(p); s.since >= spaceCheckEvery {
		s.since = 0
		if err := s.check(); err != nil {
			return 0, err
		}
	}
	return s.w.Write(p)
}

// ctxReader reads body until ctx ends; body errors are marked errBody.
type ctxReader struct {
	ctx  context.Context
	body io.Reader
}

var errBody = errors.New("reading the body")

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", errBody, err)
	}
	return n, err
}

func (b *Bucket) Reader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, fi, err := b.open(key)
	if err != nil {
		return nil, err
	}
	end, err := segments.CheckRange(key, off, length, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &sectionReader{SectionReader: io.NewSectionReader(f, off, end-off), f: f}, nil
}

type sectionReader struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionReader) Close() error { return s.f.Close() }

func (b *Bucket) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, fi, err := b.open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	end, err := segments.CheckRange(key, off, length, fi.Size())
	if err != nil {
		return nil, err
	}
	buf := make([]byte, end-off)
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("fsbucket: read %s: %w", key, err)
	}
	return buf, nil
}

func (b *Bucket) Stat(ctx context.Context, key string) (segments.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return segments.ObjectInfo{}, err
	}
	f, fi, err := b.open(key)
	if err != nil {
		return segments.ObjectInfo{}, err
	}
	f.Close()
	return segments.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

func (b *Bucket) Delete(ctx context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("fsbucket: delete %s: %w", key, err)
	}
	// Drop directories the delete emptied; failure just means not empty.
	for dir := filepath.Dir(p); dir != b.root && strings.HasPrefix(dir, b.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List walks the deepest directory the prefix names, then sorts: a plain
// directory walk does not yield S3's byte order ("a-b" sorts before "a/c").
func (b *Bucket) List(ctx context.Context, prefix, startAfter string) iter.Seq2[segments.ObjectInfo, error] {
	return func(yield func(segments.ObjectInfo, error) bool) {
		dir := ""
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			dir = prefix[:i]
		}
		start := filepath.Join(b.root, filepath.FromSlash(dir))
		var infos []segments.ObjectInfo
		err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(b.root, p)
			key := filepath.ToSlash(rel)
			if d.IsDir() {
				if key == tmpDir {
					return fs.SkipDir
				}
				return nil
			}
			if !strings.HasPrefix(key, prefix) || key <= startAfter || path.Base(key) == "" {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // deleted during the walk
				}
				return err
			}
			infos = append(infos, segments.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
			return nil
		})
		if err != nil {
			yield(segments.ObjectInfo{}, fmt.Errorf("fsbucket: list %q: %w", prefix, err))
			return
		}
		slices.SortFunc(infos, func(x, y segments.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}
