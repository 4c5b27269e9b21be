package testenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/segments/fsbucket"
	"github.com/streambed/streambed/pkg/segments/s3bucket"
)

// Embedded opens the embedded default's storage under dir, laid out as
// serve lays it out (objects/ and metadata.db); the table is closed when
// the test ends.
func Embedded(t testing.TB, dir string) (*bolttable.Table, *fsbucket.Bucket) {
	t.Helper()
	fb, err := fsbucket.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	bt, err := bolttable.Open(filepath.Join(dir, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bt.Close() })
	return bt, fb
}

// MinIOMoto creates a fresh bucket on MinIO and a table on moto, both
// named name (returned), and opens them. attempts bounds the SDK's
// attempts per call (0: the default).
func MinIOMoto(t testing.TB, prefix string, attempts int) (*dynamotable.Table, *s3bucket.Bucket, string) {
	t.Helper()
	minio, user, password := MinIO(t)
	moto := Moto(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(user, password, "")
	name := Name(prefix)
	sc, err := s3bucket.NewClient(ctx, s3bucket.Config{Config: awsconf.Config{Endpoint: minio, Region: "us-east-1", Credentials: creds, MaxAttempts: attempts}, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	dc, err := dynamotable.NewClient(ctx, awsconf.Config{Endpoint: moto, Region: "us-east-1", Credentials: creds, MaxAttempts: attempts})
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamotable.EnsureTable(ctx, dc, name); err != nil {
		t.Fatal(err)
	}
	return dynamotable.New(dc, name), s3bucket.New(sc, name), name
}
