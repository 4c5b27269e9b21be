// Package dynamotable is the DynamoDB adapter of offsets.Table, built on
// aws-sdk-go-v2. One table with a string partition key "pk" and sort key
// "sk"; every item carries its version "v", its value "d" (binary) and an
// optional "ttl" (epoch seconds, the table's TTL attribute). docs/metadata.md
// describes the schema and the conditions each write carries.
//
// Reads that correctness depends on are strongly consistent (GetItem,
// BatchGetItem and Query with ConsistentRead). A single-op write is a
// conditional PutItem/UpdateItem/DeleteItem (half the cost of a
// transaction); more ops are one TransactWriteItems with a client request
// token, so the SDK's own retries of a transaction that did commit are
// answered with success instead of applying it twice.
package dynamotable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/retry"
)

// API is the part of the DynamoDB client the table uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// NewClient builds a DynamoDB client from the default credential chain.
func NewClient(ctx context.Context, cfg awsconf.Config) (*dynamodb.Client, error) {
	awsCfg, err := awsconf.Load(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamotable: %w", err)
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if os.Getenv("STREAMBED_DEBUG_SDK_RETRIES") != "" {
			o.ClientLogMode |= aws.LogRetries // diagnose unexpected condition failures
		}
	}), nil
}

// Table is an offsets.Table on one DynamoDB table.
type Table struct {
	api  API
	name string
}

var _ offsets.Table = (*Table)(nil)

// New returns a Table using api on the named table.
func New(api API, name string) *Table { return &Table{api: api, name: name} }

// Name is the DynamoDB table name.
func (t *Table) Name() string { return t.name }

const (
	attrPK, attrSK, attrV, attrD, attrTTL = "pk", "sk", "v", "d", "ttl"
	// batchGetMax is BatchGetItem's key limit.
	batchGetMax = 100
)

func keyAttrs(k offsets.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: k.PK}, attrSK: &types.AttributeValueMemberS{Value: k.SK}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func decodeItem(av map[string]types.AttributeValue) (offsets.Item, error) {
	var it offsets.Item
	pk, ok1 := av[attrPK].(*types.AttributeValueMemberS)
	sk, ok2 := av[attrSK].(*types.AttributeValueMemberS)
	v, ok3 := av[attrV].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 || !ok3 {
		return it, fmt.Errorf("dynamotable: item without pk, sk or v: %v", av)
	}
	it.Key = offsets.Key{PK: pk.Value, SK: sk.Value}
	var err error
	if it.Version, err = strconv.ParseInt(v.Value, 10, 64); err != nil || it.Version <= 0 {
		return it, fmt.Errorf("dynamotable: item %s has version %q", it.Key, v.Value)
	}
	if d, ok := av[attrD].(*types.AttributeValueMemberB); ok {
		it.Value = d.Value
	}
	if ttl, ok := av[attrTTL].(*types.AttributeValueMemberN); ok {
		it.TTL, _ = strconv.ParseInt(ttl.Value, 10, 64)
	}
	return it, nil
}

func (t *Table) Get(ctx context.Context, keys ...offsets.Key) ([]offsets.Item, error) {
	out := make([]offsets.Item, len(keys))
	if len(keys) == 1 {
		res, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.name, Key: keyAttrs(keys[0]), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, mapErr(err)
		}
		out[0] = offsets.Item{Key: keys[0]}
		if res.Item != nil {
			if out[0], err = decodeItem(res.Item); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	found := make(map[offsets.Key]offsets.Item, len(keys))
	var unique []offsets.Key
	for _, k := range keys {
		if _, ok := found[k]; !ok {
			found[k] = offsets.Item{Key: k}
			unique = append(unique, k)
		}
	}
	for len(unique) > 0 {
		n := min(len(unique), batchGetMax)
		req := make([]map[string]types.AttributeValue, n)
		for i, k := range unique[:n] {
			req[i] = keyAttrs(k)
		}
		unique = unique[n:]
		pending := map[string]types.KeysAndAttributes{t.name: {Keys: req, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(pending) > 0; attempt++ {
			res, err := t.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, mapErr(err)
			}
			for _, av := range res.Responses[t.name] {
				it, err := decodeItem(av)
				if err != nil {
					return nil, err
				}
				found[it.Key] = it
			}
			pending = res.UnprocessedKeys
			if len(pending) > 0 {
				// Throttled part of the batch: back off and ask again.
				if attempt >= 10 {
					return nil, fmt.Errorf("%w: BatchGetItem left keys unprocessed after %d attempts", offsets.ErrThrottled, attempt+1)
				}
				if err := sleep(ctx, attempt); err != nil {
					return nil, err
				}
			}
		}
	}
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, nil
}

// unprocessedRetry paces re-asking for keys BatchGetItem left unprocessed
// (its throttling answer).
var unprocessedRetry = retry.Policy{Base: 10 * time.Millisecond, Max: time.Second}

func sleep(ctx context.Context, attempt int) error { return unprocessedRetry.Sleep(ctx, attempt+1) }

func (t *Table) Query(ctx context.Context, pk string, r offsets.Range, limit int) ([]offsets.Item, bool, error) {
	in := &dynamodb.QueryInput{
		TableName:                &t.name,
		ConsistentRead:           aws.Bool(true),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk},
			":to": &types.AttributeValueMemberS{Value: r.To},
		},
	}
	if r.From == "" {
		// Key condition values cannot be empty strings.
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk <= :to")
	} else {
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk BETWEEN :from AND :to")
		in.ExpressionAttributeValues[":from"] = &types.AttributeValueMemberS{Value: r.From}
	}
	var out []offsets.Item
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit-len(out), 1000)))
		}
		res, err := t.api.Query(ctx, in)
		if err != nil {
			return nil, false, mapErr(err)
		}
		for _, av := range res.Items {
			it, err := decodeItem(av)
			if err != nil {
				return nil, false, err
			}
			out = append(out, it)
		}
		if res.LastEvaluatedKey == nil {
			return out, false, nil
		}
		if limit > 0 && len(out) >= limit {
			// DynamoDB may report more when exactly limit items remained;
			// callers treat "more" as "ask again", which then comes back empty.
			return out, true, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// condition returns the condition expression for an op's Expect.
func condition(op offsets.Op, names map[string]string, values map[string]types.AttributeValue) *string {
	switch op.Expect {
	case offsets.AnyVersion:
		return nil
	case 0:
		names["#pk"] = attrPK
		return aws.String("attribute_not_exists(#pk)")
	default:
		names["#v"] = attrV
		values[":expect"] = num(op.Expect)
		return aws.String("#v = :expect")
	}
}

func nilIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

// putItem is the full item a conditional Put writes (version Expect+1).
func putItem(op offsets.Op) map[string]types.AttributeValue {
	item := keyAttrs(op.Key)
	item[attrV] = num(op.Expect + 1)
	item[attrD] = &types.AttributeValueMemberB{Value: op.Value}
	if op.TTL > 0 {
		item[attrTTL] = num(op.TTL)
	}
	return item
}

// blindPut is an unconditional Put as an update, since the new version
// depends on the stored one.
func blindPut(op offsets.Op) (expr string, names map[string]string, values map[string]types.AttributeValue) {
	names = map[string]string{"#v": attrV, "#d": attrD, "#ttl": attrTTL}
	values = map[string]types.AttributeValue{":zero": num(0), ":one": num(1), ":d": &types.AttributeValueMemberB{Value: op.Value}}
	expr = "SET #d = :d, #v = if_not_exists(#v, :zero) + :one"
	if op.TTL > 0 {
		values[":ttl"] = num(op.TTL)
		expr += ", #ttl = :ttl"
	} else {
		expr += " REMOVE #ttl"
	}
	return expr, names, values
}

func (t *Table) Write(ctx context.Context, ops ...offsets.Op) error {
	if err := offsets.ValidateOps(ops); err != nil {
		return err
	}
	if len(ops) == 1 && ops[0].Kind != offsets.OpCheck {
		return t.writeOne(ctx, ops[0])
	}
	items := make([]types.TransactWriteItem, len(ops))
	for i, op := range ops {
		names, values := map[string]string{}, map[string]types.AttributeValue{}
		switch op.Kind {
		case offsets.OpPut:
			if op.Expect == offsets.AnyVersion {
				expr, n, v := blindPut(op)
				items[i].Update = &types.Update{TableName: &t.name, Key: keyAttrs(op.Key), UpdateExpression: &expr, ExpressionAttributeNames: n, ExpressionAttributeValues: v}
				continue
			}
			cond := condition(op, names, values)
			items[i].Put = &types.Put{TableName: &t.name, Item: putItem(op), ConditionExpression: cond, ExpressionAttributeNames: nilIfEmpty(names), ExpressionAttributeValues: nilIfEmpty(values)}
		case offsets.OpDelete:
			cond := condition(op, names, values)
			items[i].Delete = &types.Delete{TableName: &t.name, Key: keyAttrs(op.Key), ConditionExpression: cond, ExpressionAttributeNames: nilIfEmpty(names), ExpressionAttributeValues: nilIfEmpty(values)}
		case offsets.OpCheck:
			cond := condition(op, names, values)
			items[i].ConditionCheck = &types.ConditionCheck{TableName: &t.name, Key: keyAttrs(op.Key), ConditionExpression: cond, ExpressionAttributeNames: nilIfEmpty(names), ExpressionAttributeValues: nilIfEmpty(values)}
		}
	}
	_, err := t.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items, ClientRequestToken: aws.String(token())})
	return mapTxErr(err, ops)
}

func (t *Table) writeOne(ctx context.Context, op offsets.Op) error {
	names, values := map[string]string{}, map[string]types.AttributeValue{}
	var err error
	switch {
	case op.Kind == offsets.OpPut && op.Expect == offsets.AnyVersion:
		expr, n, v := blindPut(op)
		_, err = t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &t.name, Key: keyAttrs(op.Key), UpdateExpression: &expr, ExpressionAttributeNames: n, ExpressionAttributeValues: v})
	case op.Kind == offsets.OpPut:
		cond := condition(op, names, values)
		_, err = t.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &t.name, Item: putItem(op), ConditionExpression: cond, ExpressionAttributeNames: nilIfEmpty(names), ExpressionAttributeValues: nilIfEmpty(values)})
	default:
		cond := condition(op, names, values)
		_, err = t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &t.name, Key: keyAttrs(op.Key), ConditionExpression: cond, ExpressionAttributeNames: nilIfEmpty(names), ExpressionAttributeValues: nilIfEmpty(values)})
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &offsets.ConditionError{Index: 0, Key: op.Key}
	}
	return mapErr(err)
}

func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// mapTxErr turns a transaction's cancellation reasons into the port's errors.
func mapTxErr(err error, ops []offsets.Op) error {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return mapErr(err)
	}
	conflict, throttled := false, false
	for i, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			if i < len(ops) {
				return &offsets.ConditionError{Index: i, Key: ops[i].Key}
			}
			return &offsets.ConditionError{Index: i}
		case "TransactionConflict":
			conflict = true
		case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			throttled = true
		case "ValidationError", "ItemCollectionSizeLimitExceeded":
			return fmt.Errorf("%w: op %d: %v", offsets.ErrRefused, i, err)
		}
	}
	switch {
	case conflict:
		return fmt.Errorf("%w: %v", offsets.ErrConflict, err)
	case throttled:
		return fmt.Errorf("%w: %v", offsets.ErrThrottled, err)
	}
	return fmt.Errorf("dynamotable: %w", err)
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "TransactionConflictException", "TransactionInProgressException":
			return fmt.Errorf("%w: %v", offsets.ErrConflict, err)
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return fmt.Errorf("%w: %v", offsets.ErrThrottled, err)
		}
		if terminal[ae.ErrorCode()] {
			return fmt.Errorf("%w: %v", offsets.ErrRefused, err)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("dynamotable: %w", err)
	}
	// The SDK spent its retries on a transient failure: unavailable (for
	// a write, with an unknown outcome).
	return fmt.Errorf("%w: dynamotable: %w", offsets.ErrUnavailable, err)
}

// terminal are the error codes no retry can fix: the request is malformed
// or over a limit, the table is missing, or the caller may not use it.
// The SDK does not retry them either, so they fail at once.
var terminal = map[string]bool{
	"ValidationException":                      true,
	"ResourceNotFoundException":                true,
	"AccessDeniedException":                    true,
	"UnrecognizedClientException":              true,
	"MissingAuthenticationTokenException":      true,
	"InvalidSignatureException":                true,
	"ItemCollectionSizeLimitExceededException": true,
	"SerializationException":                   true,
}
