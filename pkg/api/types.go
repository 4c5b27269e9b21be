package api

import "encoding/json"

// Info is GET /v1.
type Info struct {
	Name     string  `json:"name"`
	Version  string  `json:"version"`
	API      string  `json:"api"`
	Limits   Limits  `json:"limits"`
	Backends Backend `json:"backends"`
}

// Limits are the server's request limits.
type Limits struct {
	MaxBodyBytes         int   `json:"max_body_bytes"`
	MaxRecordsPerRequest int   `json:"max_records_per_request"`
	MaxRecordBytes       int64 `json:"max_record_bytes"`
	MaxResponseBytes     int   `json:"max_response_bytes"`
	MaxWaitMs            int64 `json:"max_wait_ms"`
	MaxHeadersPerRecord  int   `json:"max_headers_per_record"`
}

// Backend names the storage a server runs on.
type Backend struct {
	Objects  string `json:"objects"`
	Metadata string `json:"metadata"`
}

// TopicConfig is a topic's configuration. In requests every field is
// optional (nil: default on create, unchanged on PATCH).
type TopicConfig struct {
	RetentionMs       *int64  `json:"retention_ms,omitempty"`
	RetentionBytes    *int64  `json:"retention_bytes,omitempty"`
	CleanupPolicy     *string `json:"cleanup_policy,omitempty"`
	MaxRecordBytes    *int64  `json:"max_record_bytes,omitempty"`
	DeleteRetentionMs *int64  `json:"delete_retention_ms,omitempty"`
	TimestampType     *string `json:"timestamp_type,omitempty"`
	SegmentBytes      *int64  `json:"segment_bytes,omitempty"`
}

// Topic is a topic as the API shows it.
type Topic struct {
	Name       string      `json:"name"`
	ID         string      `json:"id"`
	Partitions int32       `json:"partitions"`
	Config     TopicConfig `json:"config"`
	CreatedMs  int64       `json:"created_ms"`
}

// CreateTopicRequest is POST /v1/topics.
type CreateTopicRequest struct {
	Name       string       `json:"name"`
	Partitions *int32       `json:"partitions,omitempty"`
	Config     *TopicConfig `json:"config,omitempty"`
}

// UpdateTopicRequest is PATCH /v1/topics/{t}.
type UpdateTopicRequest struct {
	Partitions *int32       `json:"partitions,omitempty"`
	Config     *TopicConfig `json:"config,omitempty"`
}

// TopicList is GET /v1/topics.
type TopicList struct {
	Topics []Topic `json:"topics"`
	Next   string  `json:"next,omitempty"`
}

// Partition is a partition's state.
type Partition struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	LogStartOffset int64  `json:"log_start_offset"`
	LogEndOffset   int64  `json:"log_end_offset"`
	Bytes          int64  `json:"bytes"`
	LastAppendMs   int64  `json:"last_append_ms,omitempty"`
}

// PartitionList is GET /v1/topics/{t}/partitions.
type PartitionList struct {
	Partitions []Partition `json:"partitions"`
}

// OffsetLookup is GET /v1/topics/{t}/partitions/{p}/offsets.
type OffsetLookup struct {
	Partition      int32  `json:"partition"`
	Offset         int64  `json:"offset"`
	Timestamp      *int64 `json:"timestamp,omitempty"`
	LogStartOffset int64  `json:"log_start_offset"`
	LogEndOffset   int64  `json:"log_end_offset"`
}

// Header is a record header: Value for text (null for a null value),
// ValueB64 for bytes.
type Header struct {
	Name     string  `json:"name"`
	Value    *string `json:"value"`
	ValueB64 *string `json:"value_b64,omitempty"`
}

// Record is a record in produce requests and consume responses. A key is
// given as text (Key) or base64 (KeyB64); a value as text, base64, or any
// JSON document (ValueJSON). Null key and tombstone values are JSON null.
type Record struct {
	Offset    *int64          `json:"offset,omitempty"`
	Partition *int32          `json:"partition,omitempty"`
	Timestamp *int64          `json:"timestamp,omitempty"`
	Key       *string         `json:"key,omitempty"`
	KeyB64    *string         `json:"key_b64,omitempty"`
	Value     *string         `json:"value,omitempty"`
	ValueB64  *string         `json:"value_b64,omitempty"`
	ValueJSON json.RawMessage `json:"value_json,omitempty"`
	Headers   []Header        `json:"headers,omitempty"`
}

// ProduceRequest is POST /v1/topics/{t}/records. With Producer, the
// request is an idempotent producer's (KIP-98): every record names its
// partition and BaseSequences gives each partition's first sequence number
// (keys are partition numbers).
type ProduceRequest struct {
	Records       []json.RawMessage `json:"records"`
	Producer      *ProducerEpoch    `json:"producer,omitempty"`
	BaseSequences map[string]int32  `json:"base_sequences,omitempty"`
}

// ProducerEpoch identifies an idempotent producer.
type ProducerEpoch struct {
	ID    int64 `json:"id"`
	Epoch int16 `json:"epoch"`
}

// RecordResult is one record's outcome in a topic-level produce.
type RecordResult struct {
	Partition *int32    `json:"partition,omitempty"`
	Offset    *int64    `json:"offset,omitempty"`
	Timestamp *int64    `json:"timestamp,omitempty"`
	Error     *ErrorRef `json:"error,omitempty"`
}

// ProduceResponse answers a topic-level produce, results in request order.
type ProduceResponse struct {
	FailedRecordCount int            `json:"failed_record_count"`
	Results           []RecordResult `json:"results"`
	// PartitionCount is the topic's partition count as the broker knows it
	// after the request: clients that partition by key themselves switch
	// to it when it grew (Kafka clients learn it from metadata).
	PartitionCount int32 `json:"partition_count,omitempty"`
}

// ProducerRef identifies an idempotent producer's batch.
type ProducerRef struct {
	ID           int64 `json:"id"`
	Epoch        int16 `json:"epoch"`
	BaseSequence int32 `json:"base_sequence"`
}

// PartitionProduceRequest is POST /v1/topics/{t}/partitions/{p}/records:
// all records are appended atomically, as one batch.
type PartitionProduceRequest struct {
	Records        []json.RawMessage `json:"records"`
	Producer       *ProducerRef      `json:"producer,omitempty"`
	ExpectedOffset *int64            `json:"expected_offset,omitempty"`
	FencingToken   *string           `json:"fencing_token,omitempty"`
}

// PartitionProduceResponse answers a partition-level produce.
type PartitionProduceResponse struct {
	Partition    int32 `json:"partition"`
	BaseOffset   int64 `json:"base_offset"`
	LastOffset   int64 `json:"last_offset"`
	LogEndOffset int64 `json:"log_end_offset"`
	Duplicate    bool  `json:"duplicate"`
}

// FenceRequest is POST /v1/topics/{t}/partitions/{p}/fence.
type FenceRequest struct {
	Token   string  `json:"token"`
	Current *string `json:"current,omitempty"`
}

// Producer is POST /v1/producers: a fresh idempotent producer id.
type Producer struct {
	ProducerID int64 `json:"producer_id"`
	Epoch      int16 `json:"epoch"`
}

// ConsumeResponse is GET /v1/topics/{t}/partitions/{p}/records.
type ConsumeResponse struct {
	Records        []Record `json:"records"`
	NextOffset     int64    `json:"next_offset"`
	LogStartOffset int64    `json:"log_start_offset"`
	LogEndOffset   int64    `json:"log_end_offset"`
}

// FetchPartition names one partition of a POST /v1/fetch.
type FetchPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// FetchRequest is POST /v1/fetch: many partitions, one budget.
type FetchRequest struct {
	Partitions []FetchPartition `json:"partitions"`
	MaxRecords *int             `json:"max_records,omitempty"`
	MaxBytes   *int             `json:"max_bytes,omitempty"`
	WaitMs     *int64           `json:"wait_ms,omitempty"`
	Format     string           `json:"format,omitempty"`
}

// FetchResult is one partition's part of a fetch.
type FetchResult struct {
	Topic          string    `json:"topic"`
	Partition      int32     `json:"partition"`
	Records        []Record  `json:"records,omitempty"`
	NextOffset     *int64    `json:"next_offset,omitempty"`
	LogStartOffset *int64    `json:"log_start_offset,omitempty"`
	LogEndOffset   *int64    `json:"log_end_offset,omitempty"`
	Error          *ErrorRef `json:"error,omitempty"`
}

// FetchResponse answers POST /v1/fetch, results in request order.
type FetchResponse struct {
	Results []FetchResult `json:"results"`
}
