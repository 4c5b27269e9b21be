package broker

import (
	"errors"
	"fmt"

	"github.com/streambed/streambed/pkg/offsets"
)

// Errors the broker adds to those of pkg/offsets and pkg/segments.
var (
	ErrOffsetOutOfRange = errors.New("offset out of range")
	ErrRecordTooLarge   = errors.New("record too large")
	ErrTooManyRecords   = errors.New("too many records")
	// ErrDraining: the server is shutting down; streams end, clients reconnect.
	ErrDraining = errors.New("server is shutting down")
)

// OffsetOutOfRangeError carries the partition's bounds, so a consumer can
// seek to a valid offset.
type OffsetOutOfRangeError struct {
	Offset, LogStart, LogEnd int64
}

func (e *OffsetOutOfRangeError) Error() string {
	return fmt.Sprintf("offset %d is outside [%d, %d] (log start offset, log end offset)", e.Offset, e.LogStart, e.LogEnd)
}

func (e *OffsetOutOfRangeError) Unwrap() error { return ErrOffsetOutOfRange }

// FieldError is bad input in one named field of a request. It unwraps to
// Err (offsets.ErrInvalid unless a more specific sentinel applies).
type FieldError struct {
	Field  string
	Reason string
	Err    error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: offsets.ErrInvalid}
}
