package localstack_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambed/streambed/internal/testenv"
)

const (
	trials  = 100
	writers = 16
)

func dynamo(t *testing.T) (*dynamodb.Client, *string) {
	t.Helper()
	endpoint := testenv.Moto(t)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1 // a retried loser could look like a second winner
	})
	name := testenv.Name("gate")
	_, err = c.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:   &name,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
	return c, &name
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

// race runs writers concurrent attempts and returns how many succeeded;
// every failure must be a condition failure or a transaction cancellation.
func race(t *testing.T, attempt func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = attempt(i)
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		var ccf *types.ConditionalCheckFailedException
		var tce *types.TransactionCanceledException
		switch {
		case err == nil:
			wins++
		case errors.As(err, &ccf), errors.As(err, &tce):
		default:
			t.Fatalf("writer %d: unexpected error %v", i, err)
		}
	}
	return wins
}

// TestEmulatorGate must pass before any concurrency test trusts the
// DynamoDB emulator: of 16 concurrent conflicting conditional writes
// exactly one wins, in every one of 100 trials, for each kind of write
// Streambed's metadata store issues.
func TestEmulatorGate(t *testing.T) {
	c, table := dynamo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	kinds := map[string]func(trial, i int) error{
		"PutItem attribute_not_exists": func(trial, i int) error {
			item := key(fmt.Sprintf("put#%d", trial), "head")
			item["w"] = &types.AttributeValueMemberN{Value: fmt.Sprint(i)}
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
			return err
		},
		"UpdateItem version check": func(trial, i int) error {
			_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: table, Key: key(fmt.Sprintf("upd#%d", trial), "head"),
				UpdateExpression:          aws.String("SET v = :next, w = :w"),
				ConditionExpression:       aws.String("v = :cur"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":cur": num(0), ":next": num(1), ":w": num(i)},
			})
			return err
		},
		"TransactWriteItems two items": func(trial, i int) error {
			items := make([]types.TransactWriteItem, 0, 2)
			for _, sk := range []string{"head", "seg#00000000000000000000"} {
				item := key(fmt.Sprintf("tx#%d", trial), sk)
				item["w"] = num(i)
				items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
			}
			_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
			return err
		},
	}
	// Seed the UpdateItem items at version 0.
	for trial := range trials {
		item := key(fmt.Sprintf("upd#%d", trial), "head")
		item["v"] = num(0)
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	for name, kind := range kinds {
		bad := 0
		for trial := range trials {
			if wins := race(t, func(i int) error { return kind(trial, i) }); wins != 1 {
				bad++
				t.Errorf("%s: trial %d had %d winners, want exactly 1", name, trial, wins)
			}
		}
		t.Logf("%s: %d of %d trials had exactly one winner", name, trials-bad, trials)
	}
}

func num(i int) types.AttributeValue { return &types.AttributeValueMemberN{Value: fmt.Sprint(i)} }
