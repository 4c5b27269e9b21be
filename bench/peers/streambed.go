package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/internal/bench"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/segments/s3bucket"
)

// streambedEmbedded serves the embedded default (files + bbolt, in a fresh
// directory) in this process, as `streambed serve` does, and drives it
// with plain HTTP requests.
func streambedEmbedded(ctx context.Context, clients, records, recordBytes int, d time.Duration) ([]row, error) {
	dir, err := os.MkdirTemp("", "peers-streambed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	be, err := backend.Open(ctx, backend.Config{DataDir: dir})
	if err != nil {
		return nil, err
	}
	defer be.Close()
	r, _, err := streambedOn(ctx, be, clients, records, recordBytes, d, "embedded")
	return r, err
}

func streambedOn(ctx context.Context, be *backend.Backend, clients, records, recordBytes int, d time.Duration, what string) ([]row, *bench.RequestsResult, error) {
	srv, err := bench.Serve(be, broker.Config{Flush: broker.FlushConfig{MaxInFlight: flushesInFlight, Delay: flushDelay}})
	if err != nil {
		return nil, nil, err
	}
	defer srv.Close()
	res, err := bench.RunRequests(ctx, bench.RequestsConfig{URL: srv.URL, Partitions: 1, Clients: clients, Records: records,
		RecordBytes: recordBytes, Duration: d, Bucket: srv.Bucket, Table: srv.Table})
	if err != nil {
		return nil, nil, err
	}
	if res.Failed > 0 {
		return nil, nil, fmt.Errorf("streambed: %d requests failed, first: %s", res.Failed, res.FirstError)
	}
	fs := srv.Broker.FlushStats()
	if fs.Flushes > 0 {
		fmt.Fprintf(os.Stderr, "  streambed flushes: %d for %d requests; upload %v, commit %v on average\n", fs.Flushes, fs.Requests,
			(fs.Upload / time.Duration(fs.Flushes)).Round(10*time.Microsecond), (fs.Commit / time.Duration(fs.Flushes)).Round(10*time.Microsecond))
	}
	return []row{{System: "streambed (" + what + ")", Clients: clients, Records: records, RecordsPerS: res.RecordsPerSec, MBPerS: res.MBPerSec,
		P50: res.Latency.P50, P99: res.Latency.P99,
		Note: fmt.Sprintf("%.0f objects and %.0f metadata writes per 1,000 requests", res.ObjectsPer1000, res.WritesPer1000)}}, res, nil
}

// streambedS3 runs Streambed on MinIO + moto and, at each concurrency, raw
// PUTs of objects of the size it wrote to the same MinIO.
func streambedS3(ctx context.Context, clientCounts []int, recordBytes int, d time.Duration) ([]row, error) {
	minio, user, pass := os.Getenv(testenv.MinIOEndpoint), os.Getenv(testenv.MinIOUser), os.Getenv(testenv.MinIOPassword)
	moto := os.Getenv(testenv.MotoEndpoint)
	if minio == "" || moto == "" {
		return nil, fmt.Errorf("-s3 needs %s and %s (run under ./localstack/with-stack.sh)", testenv.MinIOEndpoint, testenv.MotoEndpoint)
	}
	var rows []row
	for _, c := range clientCounts {
		name := fmt.Sprintf("peers-%d", time.Now().UnixNano())
		creds := credentials.NewStaticCredentialsProvider(user, pass, "")
		sc, err := s3bucket.NewClient(ctx, s3bucket.Config{Config: awsconf.Config{Endpoint: minio, Region: "us-east-1", Credentials: creds}, PathStyle: true})
		if err != nil {
			return nil, err
		}
		if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
			return nil, err
		}
		dc, err := dynamotable.NewClient(ctx, awsconf.Config{Endpoint: moto, Region: "us-east-1", Credentials: creds})
		if err != nil {
			return nil, err
		}
		if err := dynamotable.EnsureTable(ctx, dc, name); err != nil {
			return nil, err
		}
		be := &backend.Backend{Table: dynamotable.New(dc, name), Bucket: s3bucket.New(sc, name), Objects: "s3", Metadata: "dynamodb"}
		r, res, err := streambedOn(ctx, be, c, 1000, recordBytes, d, "MinIO + moto")
		if err != nil {
			return nil, err
		}
		objectBytes := int64(res.ObjectBytes)
		bl, err := bench.RunBaseline(ctx, be.Bucket, be.Table, objectBytes, c, d)
		if err != nil {
			return nil, err
		}
		// Streambed's bytes are what it stored (compressed), as raw PUTs'.
		stored := res.ObjectBytes * float64(res.Objects) / d.Seconds() / 1e6
		r[0].Note += fmt.Sprintf("; stores %.1f MB/s, %.2f× raw PUT", stored, stored/bl.PutMBps)
		rows = append(rows, r[0], row{System: "raw PUT (MinIO)", Clients: c, Records: 0, MBPerS: bl.PutMBps, P50: bl.PutLatency.P50, P99: bl.PutLatency.P99,
			Note: fmt.Sprintf("objects of %d KiB, as Streambed wrote them", objectBytes>>10)})
	}
	return rows, nil
}
