package api

import (
	"fmt"
	"net/http"
)

// Code is a stable, machine-readable error code. Clients switch on codes,
// never on messages.
type Code string

// Error codes. Each has one HTTP status and one retry classification,
// listed in Catalog.
const (
	CodeInvalidRequest       Code = "invalid_request"
	CodeInvalidJSON          Code = "invalid_json"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeBodyTooLarge         Code = "body_too_large"
	CodeRecordTooLarge       Code = "record_too_large"
	CodeTooManyRecords       Code = "too_many_records"
	CodeNotFound             Code = "not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeHeadersTooLarge      Code = "headers_too_large"
	CodeHTTPVersion          Code = "http_version_not_supported"
	CodeNotImplemented       Code = "not_implemented"
	CodeRequestTimeout       Code = "request_timeout"
	CodeUnknownTopic         Code = "unknown_topic"
	CodeUnknownPartition     Code = "unknown_partition"
	CodeTopicExists          Code = "topic_exists"
	CodeOffsetOutOfRange     Code = "offset_out_of_range"
	CodeOutOfOrderSequence   Code = "out_of_order_sequence"
	CodeProducerFenced       Code = "producer_fenced"
	CodeExpectedOffset       Code = "expected_offset_mismatch"
	CodeFenced               Code = "fenced"
	CodeUnknownGroup         Code = "unknown_group"
	CodeUnknownMember        Code = "unknown_member_id"
	CodeStaleMemberEpoch     Code = "stale_member_epoch"
	CodePartitionNotAssigned Code = "partition_not_assigned"
	CodeGroupNotEmpty        Code = "group_not_empty"
	CodeGroupProtocol        Code = "group_protocol_mismatch"
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeStalePartitionCount  Code = "stale_partition_count"
	CodeUnauthenticated      Code = "unauthenticated"
	CodeForbidden            Code = "forbidden"
	CodeThrottled            Code = "throttled"
	CodeUnavailable          Code = "unavailable"
	CodeTimeout              Code = "timeout"
	CodeStorageRefused       Code = "storage_refused"
	CodeInsufficientStorage  Code = "insufficient_storage"
	CodeInternal             Code = "internal"
	// Errors of encoded record batches (Kafka clients').
	CodeCorruptRecord     Code = "corrupt_record"
	CodeInvalidRecord     Code = "invalid_record"
	CodeInvalidTimestamp  Code = "invalid_timestamp"
	CodeUnsupportedFormat Code = "unsupported_record_format"
)

// SideEffect says whether a failed request may have changed state.
type SideEffect string

const (
	// SideEffectNone: nothing changed; safe to retry or give up.
	SideEffectNone SideEffect = "none"
	// SideEffectMaybe: the outcome is unknown (e.g. a timeout after a
	// commit was sent). Retry only with idempotence (a producer id or an
	// Idempotency-Key), or check before retrying.
	SideEffectMaybe SideEffect = "maybe"
)

// CodeInfo is a catalog entry.
type CodeInfo struct {
	Status    int
	Retryable bool
	Title     string
	// Kafka is the Kafka protocol error code the Kafka listener answers
	// with (-1: UNKNOWN_SERVER_ERROR).
	Kafka int16
}

// Catalog maps every code to its HTTP status, whether retrying the same
// request can succeed, a short title, and the Kafka error code. It is the
// one place these are decided.
var Catalog = map[Code]CodeInfo{
	CodeInvalidRequest:       {http.StatusBadRequest, false, "Invalid request", 42},
	CodeInvalidJSON:          {http.StatusBadRequest, false, "Malformed JSON", 42},
	CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, false, "Unsupported media type", 42},
	CodeBodyTooLarge:         {http.StatusRequestEntityTooLarge, false, "Request body too large", 10},
	CodeRecordTooLarge:       {http.StatusRequestEntityTooLarge, false, "Record too large", 10},
	CodeTooManyRecords:       {http.StatusRequestEntityTooLarge, false, "Too many records", 42},
	CodeNotFound:             {http.StatusNotFound, false, "Not found", 42},
	CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, false, "Method not allowed", 42},
	CodeHeadersTooLarge:      {http.StatusRequestHeaderFieldsTooLarge, false, "Request headers too large", 42},
	CodeHTTPVersion:          {http.StatusHTTPVersionNotSupported, false, "HTTP version not supported", 42},
	CodeNotImplemented:       {http.StatusNotImplemented, false, "Not implemented", 35},
	// RequestTimeout: the request body arrived too slowly (under the
	// server's minimum rate) and was cut off. Nothing was written.
	CodeRequestTimeout:       {http.StatusRequestTimeout, true, "Request body too slow", 7},
	CodeUnknownTopic:         {http.StatusNotFound, false, "Unknown topic", 3},
	CodeUnknownPartition:     {http.StatusNotFound, false, "Unknown partition", 3},
	CodeTopicExists:          {http.StatusConflict, false, "Topic already exists", 36},
	CodeOffsetOutOfRange:     {http.StatusRequestedRangeNotSatisfiable, false, "Offset out of range", 1},
	CodeOutOfOrderSequence:   {http.StatusConflict, false, "Out of order sequence number", 45},
	CodeProducerFenced:       {http.StatusConflict, false, "Producer fenced", 47},
	CodeExpectedOffset:       {http.StatusPreconditionFailed, false, "Expected offset mismatch", 42},
	CodeFenced:               {http.StatusConflict, false, "Fencing token mismatch", 42},
	CodeUnknownGroup:         {http.StatusNotFound, false, "Unknown group", 69},
	CodeUnknownMember:        {http.StatusNotFound, false, "Unknown member id", 25},
	CodeStaleMemberEpoch:     {http.StatusConflict, false, "Stale member epoch", 22},
	CodePartitionNotAssigned: {http.StatusConflict, false, "Partition not assigned", 22},
	CodeGroupNotEmpty:        {http.StatusConflict, false, "Group not empty", 68},
	CodeGroupProtocol:        {http.StatusConflict, false, "Group protocol mismatch", 23},
	// IdempotencyKeyReused: the key was first used with other records (by
	// this principal, on this topic, within its lifetime). Nothing stored.
	CodeIdempotencyKeyReused: {http.StatusUnprocessableEntity, false, "Idempotency-Key reused", 42},
	// StalePartitionCount: records were partitioned by key for fewer
	// partitions than the topic has now (it grew during the request, more
	// than once). Nothing was written for them; send them again.
	CodeStalePartitionCount: {http.StatusConflict, true, "Partition count changed", 42},
	CodeUnauthenticated:     {http.StatusUnauthorized, false, "Authentication required", 58},
	CodeForbidden:           {http.StatusForbidden, false, "Forbidden", 29},
	// Throttled: a rate limit or the storage's throughput; retry after a
	// pause (Retry-After when given).
	CodeThrottled: {http.StatusTooManyRequests, true, "Throttled", 89},
	// Unavailable: storage failed or stayed contended through the retry
	// budget. side_effect says whether a write may have landed.
	CodeUnavailable: {http.StatusServiceUnavailable, true, "Temporarily unavailable", 56},
	// Timeout: the request's server-side deadline passed while it waited
	// on storage (or the client went away). side_effect as above.
	CodeTimeout: {http.StatusGatewayTimeout, true, "Timed out", 7},
	// StorageRefused: storage refused the request for a reason no retry
	// fixes (access denied, a missing bucket or table, a malformed
	// request): an operator must act. Nothing was written.
	CodeStorageRefused: {http.StatusInternalServerError, false, "Refused by storage", -1},
	// InsufficientStorage: the server's disk is full. Nothing was written;
	// retry once space has been freed (deleting topics frees it promptly).
	CodeInsufficientStorage: {http.StatusInsufficientStorage, true, "Insufficient storage", 56},
	CodeInternal:            {http.StatusInternalServerError, false, "Internal error", -1},
	CodeCorruptRecord:       {http.StatusBadRequest, false, "Corrupt record batch", 2},
	CodeInvalidRecord:       {http.StatusBadRequest, false, "Invalid record", 87},
	CodeInvalidTimestamp:    {http.StatusBadRequest, false, "Invalid timestamp", 32},
	CodeUnsupportedFormat:   {http.StatusBadRequest, false, "Unsupported record format", 43},
}

// ProblemContentType is the media type of error responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem detail with Streambed's extensions. Every
// error response of the v1 API is one.
type Problem struct {
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Status     int        `json:"status"`
	Detail     string     `json:"detail,omitempty"`
	Code       Code       `json:"code"`
	Retryable  bool       `json:"retryable"`
	SideEffect SideEffect `json:"side_effect"`
	// Field names the offending input, as a path like "records[3].value_b64".
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Log bounds accompany offset_out_of_range and expected_offset_mismatch.
	LogStartOffset *int64 `json:"log_start_offset,omitempty"`
	LogEndOffset   *int64 `json:"log_end_offset,omitempty"`
	// RetryAfter (seconds), when set, is also sent as Retry-After.
	RetryAfter int `json:"retry_after,omitempty"`
}

// NewProblem fills a Problem for code from the catalog.
func NewProblem(code Code, detail string) *Problem {
	info, ok := Catalog[code]
	if !ok {
		code, info = CodeInternal, Catalog[CodeInternal]
	}
	return &Problem{
		Type: "https://streambed.dev/problems/" + string(code), Title: info.Title, Status: info.Status,
		Detail: detail, Code: code, Retryable: info.Retryable, SideEffect: SideEffectNone,
	}
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Code)
	if p.Field != "" {
		s += " (" + p.Field + ")"
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// ErrorRef is the short error form inside per-record and per-partition
// results.
type ErrorRef struct {
	Code      Code   `json:"code"`
	Status    int    `json:"status"`
	Retryable bool   `json:"retryable"`
	Message   string `json:"message,omitempty"`
}
