package dynamotable_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/dynamotable"
	"github.com/streambed/streambed/pkg/offsets/offsetstest"
)

type fastBackoff struct{}

func (fastBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	return time.Duration(attempt) * 2 * time.Millisecond, nil
}

func client(t *testing.T, endpoint string, attempts int) *dynamodb.Client {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := dynamotable.NewClient(context.Background(), awsconf.Config{Endpoint: endpoint, Backoff: fastBackoff{}, MaxAttempts: attempts})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAcceptanceMoto(t *testing.T) {
	c := client(t, testenv.Moto(t), 0)
	offsetstest.Run(t, func(t *testing.T) offsets.Table {
		name := testenv.Name("sbt")
		if err := dynamotable.EnsureTable(context.Background(), c, name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
		return dynamotable.New(c, name)
	})
}

func TestEnsureTableIdempotent(t *testing.T) {
	c := client(t, testenv.Moto(t), 0)
	name := testenv.Name("sbt")
	for range 2 {
		if err := dynamotable.EnsureTable(context.Background(), c, name); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil || out.TimeToLiveDescription == nil || *out.TimeToLiveDescription.AttributeName != "ttl" {
		t.Fatalf("TTL not enabled on ttl: %+v %v", out, err)
	}
}

// fakeDynamo answers every request with one canned error body.
func fakeDynamo(t *testing.T, status int, body string) (*dynamotable.Table, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return dynamotable.New(client(t, srv.URL, 3), "table"), &calls
}

func TestErrorMapping(t *testing.T) {
	k := offsets.Key{PK: "p", SK: "s"}
	two := []offsets.Op{offsets.Put(k, 0, []byte("x")), offsets.Check(offsets.Key{PK: "p", SK: "t"}, 1)}
	cases := []struct {
		name   string
		status int
		body   string
		ops    []offsets.Op
		want   error
		index  int
		calls  int32
	}{
		{"single condition", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`, two[:1], offsets.ErrConditionFailed, 0, 1},
		{"tx condition names the op", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}]}`, two, offsets.ErrConditionFailed, 1, 1},
		{"tx conflict", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"TransactionConflict"},{"Code":"None"}]}`, two, offsets.ErrConflict, 0, 1},
		{"throttled after retries", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}`, two[:1], offsets.ErrThrottled, 0, 3},
		{"throttling exception", 400, `{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}`, two, offsets.ErrThrottled, 0, 3},
		// Errors no retry can fix fail at once, at every layer.
		{"validation", 400, `{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}`, two[:1], offsets.ErrRefused, 0, 1},
		{"missing table", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`, two, offsets.ErrRefused, 0, 1},
		{"access denied", 400, `{"__type":"com.amazon.coral.service#AccessDeniedException","message":"not authorized to perform: dynamodb:TransactWriteItems"}`, two, offsets.ErrRefused, 0, 1},
		{"tx validation reason", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"ValidationError","Message":"Item size to update has exceeded the maximum allowed size"}]}`, two, offsets.ErrRefused, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, calls := fakeDynamo(t, c.status, c.body)
			err := tb.Write(context.Background(), c.ops...)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var ce *offsets.ConditionError
			if errors.As(err, &ce) && ce.Index != c.index {
				t.Fatalf("condition on op %d, want %d", ce.Index, c.index)
			}
			if calls.Load() != c.calls {
				t.Fatalf("%d calls, want %d (throttling is retried by the SDK first)", calls.Load(), c.calls)
			}
		})
	}
}

// TestRefusalFailsTheStoreAtOnce: the Store's race loop does not retry a
// refusal either: one call, and the error says so.
func TestRefusalFailsTheStoreAtOnce(t *testing.T) {
	tb, calls := fakeDynamo(t, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`)
	start := time.Now()
	_, err := offsets.New(tb).CreateTopic(context.Background(), "t", 1, offsets.DefaultTopicConfig())
	if !errors.Is(err, offsets.ErrRefused) || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %s", d)
	}
}

// TestCommitCallsAreBounded: with DynamoDB failing every call with a
// retryable error, one commit makes at most the Store's attempts times the
// SDK's attempts calls (the two layers share one policy, so their budgets
// multiply to a known bound rather than 30 x 10).
func TestCommitCallsAreBounded(t *testing.T) {
	tb, calls := fakeDynamo(t, 500, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}`)
	s := offsets.New(tb, offsets.WithRetry(4, time.Millisecond, 2*time.Millisecond))
	tp := offsets.Topic{Name: "t", ID: "id", Partitions: 1, Config: offsets.DefaultTopicConfig()}
	res, err := s.Commit(context.Background(), tp, offsets.ObjectMeta{Key: "l0/x", Size: 1}, []offsets.Append{{Records: 1, Length: 1, ExpectedOffset: -1}})
	if err != nil || !errors.Is(res[0].Err, offsets.ErrUnavailable) {
		t.Fatalf("commit: %v %+v", err, res)
	}
	if n := calls.Load(); n > 4*3 {
		t.Fatalf("%d calls for one commit, bound is %d", n, 4*3)
	}
}

func BenchmarkCommitsMoto(b *testing.B) {
	endpoint := testenv.Moto(b)
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	c, err := dynamotable.NewClient(context.Background(), awsconf.Config{Endpoint: endpoint, Region: "us-east-1"})
	if err != nil {
		b.Fatal(err)
	}
	offsetstest.BenchmarkCommits(b, func(b *testing.B) offsets.Table {
		name := testenv.Name("bench")
		if err := dynamotable.EnsureTable(context.Background(), c, name); err != nil {
			b.Fatal(err)
		}
		// moto copies a whole table per transaction item: keep tables small.
		b.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
		return dynamotable.New(c, name)
	})
}
