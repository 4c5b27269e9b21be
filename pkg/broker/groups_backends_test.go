package broker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/dynamolike"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/offsets/memtable"
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

// TestGroupsDynamoLike runs the group protocol over a table with
// DynamoDB's torn multi-item reads, transaction conflicts and writes that
// land after their caller gave up on them.
func TestGroupsDynamoLike(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	GroupSuite(t, func(t *testing.T) offsets.Table {
		dl := dynamolike.New(memtable.New(), dynamolike.Config{Seed: seed, TornReads: true, MaxInFlight: 200 * time.Microsecond})
		t.Cleanup(dl.Wait)
		return dl
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
