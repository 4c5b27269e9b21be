package main

import (
	"flag"
	"os"

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
	return &env
}
