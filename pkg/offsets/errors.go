package offsets

import (
	"errors"
	"fmt"
)

// State errors the Store returns. They are sentinels so that the HTTP
// layer's single error catalog can map each to a status and a code; details
// travel in wrapping errors.
var (
	ErrInvalid                = errors.New("invalid argument")
	ErrUnknownTopic           = errors.New("unknown topic")
	ErrTopicExists            = errors.New("topic already exists")
	ErrUnknownPartition       = errors.New("unknown partition")
	ErrOutOfOrderSequence     = errors.New("out of order sequence number")
	ErrProducerFenced         = errors.New("producer fenced by a newer epoch")
	ErrExpectedOffsetMismatch = errors.New("expected offset does not match the log end offset")
	ErrFenced                 = errors.New("fencing token does not match")
	ErrLeaseHeld              = errors.New("partition lease held by another compactor")
	ErrLeaseLost              = errors.New("partition lease lost")
	ErrUnknownGroup           = errors.New("unknown group")
	ErrUnknownMember          = errors.New("unknown member id")
	ErrStaleMemberEpoch       = errors.New("stale member epoch")
	ErrPartitionNotAssigned   = errors.New("partition not assigned to the member")
	ErrGroupNotEmpty          = errors.New("group is not empty")
	// ErrGroupProtocol: a member asked to join a group of the other kind
	// (broker-assigned or client-assigned) while it has live members.
	ErrGroupProtocol = errors.New("the group's members use another group protocol")
	// ErrStalePartitionCount: records were partitioned by key with a
	// partition count the topic has since grown past. Nothing was
	// committed; partition them again with the new count.
	ErrStalePartitionCount = errors.New("the topic has more partitions than the records were partitioned for")
	// ErrUnavailable: the store could not complete the operation (conflicts
	// or throttling outlasted the retry budget, or the backend failed). It is
	// retryable; for a produce nothing was committed.
	ErrUnavailable = errors.New("metadata store unavailable")
)

// OffsetMismatchError carries the log end offset an expected_offset append
// found, so clients can resynchronize.
type OffsetMismatchError struct {
	Expected, LogEnd int64
}

func (e *OffsetMismatchError) Error() string {
	return fmt.Sprintf("expected offset %d, log end offset is %d", e.Expected, e.LogEnd)
}

func (e *OffsetMismatchError) Unwrap() error { return ErrExpectedOffsetMismatch }

// InvalidError is bad input, naming the offending field (as the API
// spells it, e.g. "config.retention_ms") when there is one.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return ErrInvalid.Error() + ": " + e.Reason
	}
	return ErrInvalid.Error() + ": " + e.Field + ": " + e.Reason
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error { return invalid("", format, args...) }
