package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/streambed/streambed/internal/backend"
)

func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// backendFlags registers the storage flags every command that opens
// storage directly shares (defaults from STREAMBED_* variables).
func backendFlags(fs *flag.FlagSet) *backend.Config {
	env := backend.FromEnv()
	fs.StringVar(&env.DataDir, "data", env.DataDir, "data directory of the embedded default (env STREAMBED_DATA)")
	fs.StringVar(&env.Bucket, "s3-bucket", env.Bucket, "store objects in this S3 bucket instead of the data directory (env STREAMBED_S3_BUCKET)")
	fs.StringVar(&env.S3Endpoint, "s3-endpoint", env.S3Endpoint, "S3 endpoint for MinIO/moto/LocalStack (env STREAMBED_S3_ENDPOINT)")
	fs.BoolVar(&env.S3PathStyle, "s3-path-style", env.S3PathStyle, "path-style S3 addressing, needed by local stores (env STREAMBED_S3_PATH_STYLE=true)")
	fs.StringVar(&env.Table, "dynamodb-table", env.Table, "keep metadata in this DynamoDB table instead of the data directory (env STREAMBED_DYNAMODB_TABLE)")
	fs.StringVar(&env.DynamoEndpoint, "dynamodb-endpoint", env.DynamoEndpoint, "DynamoDB endpoint for moto/LocalStack (env STREAMBED_DYNAMODB_ENDPOINT)")
	fs.BoolVar(&env.CreateTable, "create-table", env.CreateTable, "create the DynamoDB table if it does not exist (env STREAMBED_CREATE_TABLE=true)")
	fs.StringVar(&env.Region, "region", env.Region, "AWS region (env AWS_REGION)")
	fs.Func("min-free-disk", "embedded default: free space to leave on the data directory's disk, e.g. 64MiB (default); produce is refused (507) below it so topic deletion can still free space", func(v string) error {
		n, err := parseBytes(v)
		if err != nil {
			return err
		}
		env.MinFreeBytes = &n
		return nil
	})
	return &env
}

// parseBytes reads a size: a number of bytes, or one with a unit (KB, MB,
// GB: powers of 1000; KiB, MiB, GiB: of 1024).
func parseBytes(v string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(v), uint64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 64MiB)", v)
	}
	return n * mult, nil
}
