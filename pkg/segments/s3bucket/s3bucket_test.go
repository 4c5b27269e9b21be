package s3bucket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/s3bucket"
	"github.com/streambed/streambed/pkg/segments/segmentstest"
)

type fastBackoff struct{}

func (fastBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	return time.Duration(attempt) * 5 * time.Millisecond, nil
}

func client(t *testing.T, endpoint, user, password string) *s3.Client {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", user)
	t.Setenv("AWS_SECRET_ACCESS_KEY", password)
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := s3bucket.NewClient(context.Background(), s3bucket.Config{Config: awsconf.Config{Endpoint: endpoint, Backoff: fastBackoff{}}, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newBucket(t *testing.T, c *s3.Client) segments.Bucket {
	t.Helper()
	name := testenv.Name("sbt")
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	// A page size of 7 makes the 31-key listing test span five pages.
	return s3bucket.New(c, name, s3bucket.WithListPageSize(7))
}

func TestAcceptanceMinIO(t *testing.T) {
	endpoint, user, password := testenv.MinIO(t)
	c := client(t, endpoint, user, password)
	segmentstest.Run(t, func(t *testing.T) segments.Bucket { return newBucket(t, c) })
}

func TestAcceptanceMoto(t *testing.T) {
	c := client(t, testenv.Moto(t), "test", "test")
	segmentstest.Run(t, func(t *testing.T) segments.Bucket { return newBucket(t, c) })
}

// TestMinIOIndependentClient checks what the adapter wrote with a different
// S3 implementation (minio-go), so adapter and SDK bugs cannot cancel out.
func TestMinIOIndependentClient(t *testing.T) {
	endpoint, user, password := testenv.MinIO(t)
	b := newBucket(t, client(t, endpoint, user, password)).(*s3bucket.Bucket)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(user, password, ""), Secure: u.Scheme == "https"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := bytes.Repeat([]byte("streambed"), 1000)
	if err := b.Put(ctx, "l0/7f/written-by-adapter", body); err != nil {
		t.Fatal(err)
	}
	obj, err := mc.GetObject(ctx, b.Name(), "l0/7f/written-by-adapter", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("minio-go read %d bytes (%v), want the %d written", len(got), err, len(body))
	}
	var keys []string
	for o := range mc.ListObjects(ctx, b.Name(), minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if len(keys) != 1 || keys[0] != "l0/7f/written-by-adapter" {
		t.Fatalf("minio-go lists %q", keys)
	}
	// The adapter's create-only put must refuse a key minio-go created...
	if _, err := mc.PutObject(ctx, b.Name(), "by-minio-go", bytes.NewReader([]byte("m")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "by-minio-go", []byte("adapter")); !errors.Is(err, segments.ErrAlreadyExists) {
		t.Fatalf("adapter Put over minio-go object = %v, want ErrAlreadyExists", err)
	}
	// ...and the server must refuse minio-go's conditional put over the adapter's.
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	if _, err := mc.PutObject(ctx, b.Name(), "l0/7f/written-by-adapter", bytes.NewReader([]byte("x")), 1, opts); err == nil {
		t.Fatal("minio-go If-None-Match put over an existing object succeeded")
	}
	if got, _ := b.GetRange(ctx, "l0/7f/written-by-adapter", 0, -1); !bytes.Equal(got, body) {
		t.Fatal("object changed by a refused conditional put")
	}
}

// TestRetriesSlowDown serves 503 SlowDown twice, then success, and checks
// the adapter retried instead of failing.
func TestRetriesSlowDown(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) <= 2 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		w.Header().Set("ETag", `"abc"`)
	}))
	defer srv.Close()
	b := s3bucket.New(client(t, srv.URL, "test", "test"), "bucket")
	if err := b.Put(context.Background(), "k", []byte("body")); err != nil {
		t.Fatalf("Put through two SlowDowns: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("server saw %d calls, want 3", n)
	}
}

// TestConditionalConflictRetried: S3 answers 409 ConditionalRequestConflict
// to concurrent conditional writes of one key and asks clients to retry.
func TestConditionalConflictRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `<Error><Code>ConditionalRequestConflict</Code></Error>`)
			return
		}
		w.WriteHeader(http.StatusPreconditionFailed)
		_, _ = io.WriteString(w, `<Error><Code>PreconditionFailed</Code></Error>`)
	}))
	defer srv.Close()
	b := s3bucket.New(client(t, srv.URL, "test", "test"), "bucket")
	if err := b.Put(context.Background(), "k", []byte("body")); !errors.Is(err, segments.ErrAlreadyExists) {
		t.Fatalf("Put = %v, want ErrAlreadyExists after the retried conflict", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("server saw %d calls, want 2", n)
	}
}
