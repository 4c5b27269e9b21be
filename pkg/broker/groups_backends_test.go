package broker

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
)

func TestGroupsEmbedded(t *testing.T) {
	GroupSuite(t, func(t *testing.T) offsets.Table {
		tb, err := bolttable.Open(filepath.Join(t.TempDir(), "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tb.Close() })
		return tb
	})
}

func TestGroupsDynamoDBMoto(t *testing.T) {
	endpoint := testenv.Moto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := dynamotable.NewClient(context.Background(), awsconf.Config{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	GroupSuite(t, func(t *testing.T) offsets.Table {
		name := testenv.Name("groups")
		if err := dynamotable.EnsureTable(context.Background(), c, name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
		return dynamotable.New(c, name)
	})
}
