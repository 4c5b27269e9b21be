package segments

import (
	"errors"
	"fmt"
)

// Sentinels for the kinds of damage a decoder can report. A *FormatError
// unwraps to exactly one of them, so callers test with errors.Is.
var (
	ErrBadMagic           = errors.New("bad magic")
	ErrChecksum           = errors.New("checksum mismatch")
	ErrTruncated          = errors.New("truncated")
	ErrUnsupportedVersion = errors.New("unsupported version")
	ErrMalformed          = errors.New("malformed")
	ErrTooLarge           = errors.New("too large")
)

// FormatError reports bytes that cannot be decoded: what is wrong (Kind, one
// of the sentinels above), at which byte of the decoded buffer (At), and a
// human-readable detail.
type FormatError struct {
	Kind   error
	At     int64
	Detail string
}

func (e *FormatError) Error() string {
	if e.Kind == ErrTruncated {
		return fmt.Sprintf("segments: truncated at byte %d: %s", e.At, e.Detail)
	}
	return fmt.Sprintf("segments: %v at byte %d: %s", e.Kind, e.At, e.Detail)
}

func (e *FormatError) Unwrap() error { return e.Kind }

func formatErr(kind error, at int64, format string, args ...any) *FormatError {
	return &FormatError{Kind: kind, At: at, Detail: fmt.Sprintf(format, args...)}
}

// shift moves a FormatError's position by base, so errors found inside a
// sub-slice report positions in the caller's buffer.
func shift(err error, base int64) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return &FormatError{Kind: fe.Kind, At: fe.At + base, Detail: fe.Detail}
	}
	return err
}
