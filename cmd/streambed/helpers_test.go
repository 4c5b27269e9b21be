package main

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/pkg/segments/s3bucket"
)

func createBucket(t *testing.T, endpoint, user, password, name string) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", user)
	t.Setenv("AWS_SECRET_ACCESS_KEY", password)
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := s3bucket.NewClient(context.Background(), s3bucket.Config{Config: awsconf.Config{Endpoint: endpoint}, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
}
