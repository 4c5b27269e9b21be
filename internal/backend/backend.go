// Package backend builds the two ports from configuration: the embedded
// default (a data directory: files + bbolt) or AWS (S3 + DynamoDB, or any
// compatible endpoint). `streambed serve`, the CLI's admin commands and the
// Lambda functions all wire storage through it, so they agree.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/fsbucket"
	"github.com/streambed/streambed/pkg/segments/s3bucket"
)

// Config selects the storage. With no bucket and no table, everything is
// embedded under DataDir.
type Config struct {
	DataDir string // embedded default: DataDir/objects and DataDir/metadata.db
	// MinFreeBytes is the free space the embedded object store leaves on
	// its disk (default fsbucket.DefaultReserve), so metadata writes and
	// topic deletions still work when produce is refused as "disk full".
	MinFreeBytes *uint64

	Bucket      string // S3 bucket (objects on S3 when set)
	S3Endpoint  string // MinIO / moto / LocalStack
	S3PathStyle bool

	Table          string // DynamoDB table (metadata on DynamoDB when set)
	DynamoEndpoint string
	// CreateTable creates the DynamoDB table if missing (local stacks;
	// production tables come from Terraform).
	CreateTable bool

	Region string
	Logger *slog.Logger
}

// FromEnv reads the STREAMBED_* variables (the Lambda functions' and
// serve's configuration) into a Config.
func FromEnv() Config {
	return Config{
		DataDir:        envOr("STREAMBED_DATA", "./data"),
		Bucket:         os.Getenv("STREAMBED_S3_BUCKET"),
		S3Endpoint:     os.Getenv("STREAMBED_S3_ENDPOINT"),
		S3PathStyle:    os.Getenv("STREAMBED_S3_PATH_STYLE") == "true",
		Table:          os.Getenv("STREAMBED_DYNAMODB_TABLE"),
		DynamoEndpoint: os.Getenv("STREAMBED_DYNAMODB_ENDPOINT"),
		CreateTable:    os.Getenv("STREAMBED_CREATE_TABLE") == "true",
		Region:         os.Getenv("AWS_REGION"),
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Backend is opened storage.
type Backend struct {
	Table  offsets.Table
	Bucket segments.Bucket
	// Objects and Metadata name the backends ("fs", "s3", "bolt", "dynamodb").
	Objects, Metadata string
	closers           []func() error
}

// Close releases embedded files.
func (b *Backend) Close() error {
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Open opens the storage cfg describes.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b := &Backend{}
	if cfg.Bucket == "" || cfg.Table == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	aws := awsconf.Config{Region: cfg.Region}
	if cfg.Bucket != "" {
		c := s3bucket.Config{Config: aws, PathStyle: cfg.S3PathStyle}
		c.Endpoint = cfg.S3Endpoint
		client, err := s3bucket.NewClient(ctx, c)
		if err != nil {
			return nil, err
		}
		b.Bucket, b.Objects = s3bucket.New(client, cfg.Bucket), "s3"
	} else {
		var opts []fsbucket.Option
		if cfg.MinFreeBytes != nil {
			opts = append(opts, fsbucket.WithReserve(*cfg.MinFreeBytes))
		}
		fb, err := fsbucket.Open(filepath.Join(cfg.DataDir, "objects"), opts...)
		if err != nil {
			return nil, err
		}
		b.Bucket, b.Objects = fb, "fs"
	}
	if cfg.Table != "" {
		c := aws
		c.Endpoint = cfg.DynamoEndpoint
		client, err := dynamotable.NewClient(ctx, c)
		if err != nil {
			return nil, err
		}
		if cfg.CreateTable {
			if err := dynamotable.EnsureTable(ctx, client, cfg.Table); err != nil {
				return nil, err
			}
		}
		b.Table, b.Metadata = dynamotable.New(client, cfg.Table), "dynamodb"
	} else {
		opts := []bolttable.Option{}
		if cfg.Logger != nil {
			opts = append(opts, bolttable.WithLogger(cfg.Logger))
		}
		bt, err := bolttable.Open(filepath.Join(cfg.DataDir, "metadata.db"), opts...)
		if err != nil {
			return nil, fmt.Errorf("%w (is another streambed using %s?)", err, cfg.DataDir)
		}
		b.Table, b.Metadata = bt, "bolt"
		b.closers = append(b.closers, bt.Close)
	}
	return b, nil
}

// LoadAuth reads an authorization policy from the environment: the JSON
// document in STREAMBED_AUTH_POLICY, or the SSM parameter named by
// STREAMBED_AUTH_POLICY_SSM (nil: neither is set). Functions and container
// tasks, which have no policy file, are configured this way.
func LoadAuth(ctx context.Context, cfg Config) (*auth.Authorizer, error) {
	doc := os.Getenv("STREAMBED_AUTH_POLICY")
	if name := os.Getenv("STREAMBED_AUTH_POLICY_SSM"); name != "" {
		awsCfg, err := awsconf.Load(ctx, awsconf.Config{Region: cfg.Region, Endpoint: os.Getenv("STREAMBED_SSM_ENDPOINT")})
		if err != nil {
			return nil, err
		}
		out, err := ssm.NewFromConfig(awsCfg, func(o *ssm.Options) {
			if ep := os.Getenv("STREAMBED_SSM_ENDPOINT"); ep != "" {
				o.BaseEndpoint = &ep
			}
		}).GetParameter(ctx, &ssm.GetParameterInput{Name: &name, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("STREAMBED_AUTH_POLICY_SSM %s: %w", name, err)
		}
		doc = aws.ToString(out.Parameter.Value)
	}
	if doc == "" {
		return nil, nil
	}
	p, err := auth.ParsePolicy([]byte(doc))
	if err != nil {
		return nil, err
	}
	return auth.New(ctx, p)
}
