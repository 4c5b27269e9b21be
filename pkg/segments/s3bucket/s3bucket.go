// Package s3bucket is the segments.Bucket adapter for S3 and S3-compatible
// stores (AWS S3, MinIO, moto, LocalStack), built on aws-sdk-go-v2.
//
// Create-only puts use If-None-Match: * (AWS S3 since 2024, MinIO, moto).
// Throttling (503 SlowDown) and transient errors are retried with capped
// exponential backoff and jitter by the SDK's standard retryer, with the
// client-side retry quota disabled: a broker under throttling should slow
// down, not fail fast.
package s3bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/pkg/segments"
)

// API is the part of the S3 client this adapter uses.
type API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// PartSize is the part size of multipart uploads, and so the most of a
// streamed object held in memory at once.
const PartSize = 8 << 20

// Config selects the endpoint and retry behaviour of a client.
type Config struct {
	awsconf.Config
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key; local stores need it.
	PathStyle bool
}

// NewClient builds an S3 client from the default credential chain and cfg.
func NewClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	// Concurrent conditional writes to one key: S3 asks to retry.
	cfg.RetryCodes = append(cfg.RetryCodes, "ConditionalRequestConflict")
	awsCfg, err := awsconf.Load(ctx, cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("s3bucket: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Segments carry their own CRC-32C per batch and are read by
		// range, where S3 returns no whole-object checksum: without this
		// the SDK logs a warning on every ranged GET.
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// Bucket is a segments.Bucket over one S3 bucket.
type Bucket struct {
	api      API
	bucket   string
	pageSize int32
}

var _ segments.Bucket = (*Bucket)(nil)

// Option configures a Bucket.
type Option func(*Bucket)

// WithListPageSize sets the page size of List (default 1000, S3's maximum).
func WithListPageSize(n int32) Option {
	return func(b *Bucket) {
		if n > 0 {
			b.pageSize = n
		}
	}
}

// New returns a Bucket using api on the named bucket.
func New(api API, bucket string, opts ...Option) *Bucket {
	b := &Bucket{api: api, bucket: bucket, pageSize: 1000}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Name is the S3 bucket name.
func (b *Bucket) Name() string { return b.bucket }

func (b *Bucket) Put(ctx context.Context, key string, body []byte) error {
	if err := segments.ValidateKey(key); err != nil {
		return err
	}
	_, err := b.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           &key,
		Body:          bytes.NewReader(body), // seekable: the SDK rewinds it on retry
		ContentLength: aws.Int64(int64(len(body))),
		IfNoneMatch:   aws.String("*"),
		ContentType:   aws.String("application/vnd.streambed.segment"),
	})
	return b.mapErr("put", key, err)
}

// PutStream uploads small objects with one conditional PutObject and
// larger ones in PartSize parts, read one at a time, completed with
// If-None-Match: * (create-only); a failed upload is aborted.
func (b *Bucket) PutStream(ctx context.Context, key string, size int64, body io.Reader) error {
	if err := segments.ValidateKey(key); err != nil {
		return err
	}
	buf := make([]byte, min(max(size, 0)+1, PartSize))
	if size < 0 {
		buf = make([]byte, PartSize)
	}
	// The first part decides: an object that fits in it is one PutObject.
	n, err := io.ReadFull(body, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if size >= 0 && int64(n) != size {
			return fmt.Errorf("%w: %s: %d bytes, announced %d", segments.ErrBodySize, key, n, size)
		}
		return b.Put(ctx, key, buf[:n])
	case err != nil:
		return fmt.Errorf("%w: %s: %v", segments.ErrBodySize, key, err)
	case size >= 0 && size < int64(len(buf)):
		return fmt.Errorf("%w: %s: more than %d bytes", segments.ErrBodySize, key, size)
	}
	up, err := b.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &key, ContentType: aws.String("application/vnd.streambed.segment")})
	if err != nil {
		return b.mapErr("put", key, err)
	}
	abort := func(cause error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = b.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: up.UploadId})
		return cause
	}
	var parts []types.CompletedPart
	sent := int64(0)
	for part := int32(1); n > 0; part++ {
		chunk := buf[:n]
		out, err := b.api.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b.bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(part),
			Body: bytes.NewReader(chunk), ContentLength: aws.Int64(int64(len(chunk)))})
		if err != nil {
			return abort(b.mapErr("put", key, err))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(part)})
		sent += int64(len(chunk))
		n, err = io.ReadFull(body, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return abort(fmt.Errorf("%w: %s: %v", segments.ErrBodySize, key, err))
		}
		if size >= 0 && sent+int64(n) > size {
			return abort(fmt.Errorf("%w: %s: more than %d bytes", segments.ErrBodySize, key, size))
		}
	}
	if size >= 0 && sent != size {
		return abort(fmt.Errorf("%w: %s: %d bytes, announced %d", segments.ErrBodySize, key, sent, size))
	}
	_, err = b.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, IfNoneMatch: aws.String("*")})
	if err != nil {
		return abort(b.mapErr("put", key, err))
	}
	return nil
}

// open starts a ranged GET. A nil output with no error is an empty
// object (which S3 cannot range).
func (b *Bucket) open(ctx context.Context, key string, off, length int64) (*s3.GetObjectOutput, error) {
	if err := segments.ValidateKey(key); err != nil {
		return nil, err
	}
	if off < 0 || length == 0 {
		return nil, fmt.Errorf("%w: %s: offset %d length %d", segments.ErrInvalidRange, key, off, length)
	}
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: &key}
	switch {
	case off == 0 && length < 0:
		// No Range header: also reads empty objects, which S3 cannot range.
	case length < 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	default:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	}
	out, err := b.api.GetObject(ctx, in)
	if err != nil {
		err = b.mapErr("get", key, err)
		if errors.Is(err, segments.ErrInvalidRange) && off == 0 {
			// A bounded range on an empty object: S3 says 416, the port says empty.
			if info, serr := b.Stat(ctx, key); serr == nil && info.Size == 0 {
				return nil, nil
			}
		}
		return nil, err
	}
	return out, nil
}

// Reader streams a range of an object (its GET response body).
func (b *Bucket) Reader(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	out, err := b.open(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return out.Body, nil
}

func (b *Bucket) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	out, err := b.open(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return []byte{}, nil
	}
	defer out.Body.Close()
	var buf []byte
	if n := aws.ToInt64(out.ContentLength); n > 0 {
		buf = make([]byte, 0, n)
	}
	w := &appendWriter{buf: buf}
	if _, err := io.Copy(w, out.Body); err != nil {
		return nil, fmt.Errorf("s3bucket: read %s: %w", key, err)
	}
	if w.buf == nil {
		w.buf = []byte{}
	}
	return w.buf, nil
}

func (b *Bucket) Stat(ctx context.Context, key string) (segments.ObjectInfo, error) {
	if err := segments.ValidateKey(key); err != nil {
		return segments.ObjectInfo{}, err
	}
	out, err := b.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return segments.ObjectInfo{}, b.mapErr("stat", key, err)
	}
	return segments.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := segments.ValidateKey(key); err != nil {
		return err
	}
	_, err := b.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	err = b.mapErr("delete", key, err)
	if errors.Is(err, segments.ErrNotFound) {
		return nil
	}
	return err
}

func (b *Bucket) List(ctx context.Context, prefix, startAfter string) iter.Seq2[segments.ObjectInfo, error] {
	return func(yield func(segments.ObjectInfo, error) bool) {
		in := &s3.ListObjectsV2Input{Bucket: &b.bucket, MaxKeys: aws.Int32(b.pageSize)}
		if prefix != "" {
			in.Prefix = aws.String(prefix)
		}
		if startAfter != "" {
			in.StartAfter = aws.String(startAfter)
		}
		p := s3.NewListObjectsV2Paginator(b.api, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(segments.ObjectInfo{}, b.mapErr("list", prefix, err))
				return
			}
			for _, o := range page.Contents {
				info := segments.ObjectInfo{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// mapErr turns S3 errors into the port's sentinels, keeping the cause.
func (b *Bucket) mapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed":
			sentinel = segments.ErrAlreadyExists
		case "NoSuchKey", "NotFound":
			sentinel = segments.ErrNotFound
		case "InvalidRange":
			sentinel = segments.ErrInvalidRange
		case "AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName",
			"EntityTooLarge", "AllAccessDisabled", "AccountProblem", "InvalidObjectState", "KMS.DisabledException":
			sentinel = segments.ErrRefused
		}
	}
	var re *awshttp.ResponseError
	if sentinel == nil && errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusPreconditionFailed:
			sentinel = segments.ErrAlreadyExists
		case http.StatusNotFound:
			if ae == nil || ae.ErrorCode() != "NoSuchBucket" {
				sentinel = segments.ErrNotFound
			}
		case http.StatusRequestedRangeNotSatisfiable:
			sentinel = segments.ErrInvalidRange
		}
	}
	if sentinel != nil {
		return fmt.Errorf("%w: %s s3://%s/%s: %v", sentinel, op, b.bucket, key, err)
	}
	return fmt.Errorf("s3bucket: %s s3://%s/%s: %w", op, b.bucket, key, err)
}

type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}
