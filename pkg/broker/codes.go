package broker

import (
	"context"
	"errors"
	"syscall"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

// sentinels maps state errors to API codes: the servers' half of the one
// error catalog (api.Catalog holds the HTTP status, retryability and Kafka
// error code of each). Both front ends map errors through CodeOf.
var sentinels = []struct {
	err  error
	code api.Code
}{
	{syscall.ENOSPC, api.CodeInsufficientStorage},
	{syscall.EDQUOT, api.CodeInsufficientStorage},
	{offsets.ErrRefused, api.CodeStorageRefused},
	{segments.ErrRefused, api.CodeStorageRefused},
	{ErrOffsetOutOfRange, api.CodeOffsetOutOfRange},
	{ErrRecordTooLarge, api.CodeRecordTooLarge},
	{ErrTooManyRecords, api.CodeTooManyRecords},
	{ErrCorruptBatch, api.CodeCorruptRecord},
	{ErrInvalidRecord, api.CodeInvalidRecord},
	{ErrInvalidTimestamp, api.CodeInvalidTimestamp},
	{ErrUnsupportedFormat, api.CodeUnsupportedFormat},
	{offsets.ErrUnknownTopic, api.CodeUnknownTopic},
	{offsets.ErrUnknownPartition, api.CodeUnknownPartition},
	{offsets.ErrTopicExists, api.CodeTopicExists},
	{offsets.ErrOutOfOrderSequence, api.CodeOutOfOrderSequence},
	{offsets.ErrProducerFenced, api.CodeProducerFenced},
	{offsets.ErrExpectedOffsetMismatch, api.CodeExpectedOffset},
	{offsets.ErrFenced, api.CodeFenced},
	{offsets.ErrUnknownGroup, api.CodeUnknownGroup},
	{offsets.ErrUnknownMember, api.CodeUnknownMember},
	{offsets.ErrStaleMemberEpoch, api.CodeStaleMemberEpoch},
	{offsets.ErrPartitionNotAssigned, api.CodePartitionNotAssigned},
	{offsets.ErrGroupNotEmpty, api.CodeGroupNotEmpty},
	{offsets.ErrGroupProtocol, api.CodeGroupProtocol},
	{offsets.ErrIdempotencyKeyReused, api.CodeIdempotencyKeyReused},
	{offsets.ErrStalePartitionCount, api.CodeStalePartitionCount},
	{offsets.ErrInvalid, api.CodeInvalidRequest},
	{offsets.ErrThrottled, api.CodeThrottled},
	{offsets.ErrUnavailable, api.CodeUnavailable},
	{offsets.ErrConflict, api.CodeUnavailable},
	{ErrObjectStore, api.CodeUnavailable},
	{ErrDraining, api.CodeUnavailable},
	{context.DeadlineExceeded, api.CodeTimeout},
	{context.Canceled, api.CodeTimeout},
}

// CodeOf is the API code of an error (api.CodeInternal for one the
// catalog does not know).
func CodeOf(err error) api.Code {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return api.CodeInternal
}
