package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/streambed/streambed/pkg/api"
)

// Info returns the server's version and limits.
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var out api.Info
	err := c.do(ctx, call{method: "GET", path: "/v1", idempotent: true}, &out)
	return out, err
}

// CreateTopic creates a topic; cfg may be nil (defaults).
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int32, cfg *api.TopicConfig) (api.Topic, error) {
	var out api.Topic
	// Create is idempotent in effect: a repeat that finds the topic is a 409.
	err := c.do(ctx, call{method: "POST", path: "/v1/topics", body: api.CreateTopicRequest{Name: name, Partitions: &partitions, Config: cfg}}, &out)
	return out, err
}

// Topic describes a topic.
func (c *Client) Topic(ctx context.Context, name string) (api.Topic, error) {
	var out api.Topic
	err := c.do(ctx, call{method: "GET", path: "/v1/topics/" + esc(name), idempotent: true}, &out)
	return out, err
}

// Topics iterates over all topics, by name, page by page.
func (c *Client) Topics(ctx context.Context) iter.Seq2[api.Topic, error] {
	return func(yield func(api.Topic, error) bool) {
		after := ""
		for {
			var page api.TopicList
			q := url.Values{"limit": {"1000"}}
			if after != "" {
				q.Set("after", after)
			}
			if err := c.do(ctx, call{method: "GET", path: "/v1/topics?" + q.Encode(), idempotent: true}, &page); err != nil {
				yield(api.Topic{}, err)
				return
			}
			for _, t := range page.Topics {
				if !yield(t, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			after = page.Next
		}
	}
}

// UpdateTopic grows partitions and/or changes config (nil: unchanged).
func (c *Client) UpdateTopic(ctx context.Context, name string, partitions *int32, cfg *api.TopicConfig) (api.Topic, error) {
	var out api.Topic
	err := c.do(ctx, call{method: "PATCH", path: "/v1/topics/" + esc(name), body: api.UpdateTopicRequest{Partitions: partitions, Config: cfg}, idempotent: true}, &out)
	return out, err
}

// DeleteTopic deletes a topic.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	return c.do(ctx, call{method: "DELETE", path: "/v1/topics/" + esc(name)}, nil)
}

// Partitions returns a topic's partitions with their offsets and sizes.
func (c *Client) Partitions(ctx context.Context, topic string) ([]api.Partition, error) {
	var out api.PartitionList
	err := c.do(ctx, call{method: "GET", path: "/v1/topics/" + esc(topic) + "/partitions", idempotent: true}, &out)
	return out.Partitions, err
}

// OffsetForTime returns the earliest offset of a partition whose timestamp
// is at or after t (the log end if there is none).
func (c *Client) OffsetForTime(ctx context.Context, topic string, partition int32, t time.Time) (int64, error) {
	var out api.OffsetLookup
	err := c.do(ctx, call{method: "GET", path: fmt.Sprintf("/v1/topics/%s/partitions/%d/offsets?timestamp=%d", esc(topic), partition, t.UnixMilli()), idempotent: true}, &out)
	return out.Offset, err
}

// Groups lists consumer group names.
func (c *Client) Groups(ctx context.Context) ([]string, error) {
	var all []string
	for after := ""; ; {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		var page api.GroupList
		if err := c.do(ctx, call{method: "GET", path: "/v1/groups?" + q.Encode(), idempotent: true}, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Groups...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

// Group describes a consumer group.
func (c *Client) Group(ctx context.Context, group string) (api.Group, error) {
	var out api.Group
	err := c.do(ctx, call{method: "GET", path: "/v1/groups/" + esc(group), idempotent: true}, &out)
	return out, err
}

// DeleteGroup deletes an empty group.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	return c.do(ctx, call{method: "DELETE", path: "/v1/groups/" + esc(group)}, nil)
}

// GroupOffsets returns a group's committed offsets.
func (c *Client) GroupOffsets(ctx context.Context, group string) ([]api.CommittedOffset, error) {
	var out api.OffsetsResponse
	err := c.do(ctx, call{method: "GET", path: "/v1/groups/" + esc(group) + "/offsets", idempotent: true}, &out)
	return out.Offsets, err
}

// CommitGroupOffsets commits offsets for an empty group (admin tools).
func (c *Client) CommitGroupOffsets(ctx context.Context, group string, offsets []api.OffsetCommit) error {
	return c.do(ctx, call{method: "POST", path: "/v1/groups/" + esc(group) + "/offsets", body: api.CommitRequest{Offsets: offsets}, idempotent: true}, nil)
}

// ResetGroupOffsets moves an empty group's offsets for a topic.
func (c *Client) ResetGroupOffsets(ctx context.Context, group string, req api.ResetRequest) ([]api.CommittedOffset, error) {
	var out api.OffsetsResponse
	err := c.do(ctx, call{method: "POST", path: "/v1/groups/" + esc(group) + "/offsets/reset", body: req, idempotent: true}, &out)
	return out.Offsets, err
}

// GroupLag returns a group's lag.
func (c *Client) GroupLag(ctx context.Context, group string) (api.LagResponse, error) {
	var out api.LagResponse
	err := c.do(ctx, call{method: "GET", path: "/v1/groups/" + esc(group) + "/lag", idempotent: true}, &out)
	return out, err
}

// ReadOptions say where a read starts and how much it returns. Set at
// most one of Offset, Timestamp, From and Tail; none reads from the log
// start.
type ReadOptions struct {
	Offset     *int64
	Timestamp  *time.Time
	From       string // "earliest" or "latest"
	Tail       *int64
	MaxRecords int
	MaxBytes   int
	Wait       time.Duration // long poll at the log end
}

// ReadResult is one read of a partition.
type ReadResult struct {
	Records        []Record
	NextOffset     int64
	LogStartOffset int64
	LogEndOffset   int64
}

// Read reads records from one partition.
func (c *Client) Read(ctx context.Context, topic string, partition int32, opt ReadOptions) (ReadResult, error) {
	q := url.Values{"format": {"auto"}}
	switch {
	case opt.Offset != nil:
		q.Set("offset", itoa(*opt.Offset))
	case opt.Timestamp != nil:
		q.Set("timestamp", itoa(opt.Timestamp.UnixMilli()))
	case opt.From != "":
		q.Set("from", opt.From)
	case opt.Tail != nil:
		q.Set("tail", itoa(*opt.Tail))
	}
	if opt.MaxRecords > 0 {
		q.Set("max_records", strconv.Itoa(opt.MaxRecords))
	}
	if opt.MaxBytes > 0 {
		q.Set("max_bytes", strconv.Itoa(opt.MaxBytes))
	}
	if opt.Wait > 0 {
		q.Set("wait_ms", itoa(opt.Wait.Milliseconds()))
	}
	var out struct {
		Records        []api.Record `json:"records"`
		NextOffset     int64        `json:"next_offset"`
		LogStartOffset int64        `json:"log_start_offset"`
		LogEndOffset   int64        `json:"log_end_offset"`
	}
	path := fmt.Sprintf("/v1/topics/%s/partitions/%d/records?%s", esc(topic), partition, q.Encode())
	if err := c.do(ctx, call{method: "GET", path: path, idempotent: true}, &out); err != nil {
		return ReadResult{}, err
	}
	res := ReadResult{NextOffset: out.NextOffset, LogStartOffset: out.LogStartOffset, LogEndOffset: out.LogEndOffset, Records: make([]Record, 0, len(out.Records))}
	for i := range out.Records {
		r, err := fromWire(topic, partition, &out.Records[i])
		if err != nil {
			return res, err
		}
		res.Records = append(res.Records, r)
	}
	return res, nil
}

// Produce appends records to a topic in one request, partitioned by the
// server (keyed records by Kafka's partitioner). It is not idempotent: use
// a Producer for batching, retries and exactly-once appends.
func (c *Client) Produce(ctx context.Context, topic string, recs []Record) ([]api.RecordResult, error) {
	req := produceBody{Records: make([]api.Record, len(recs))}
	for i := range recs {
		req.Records[i] = toWire(&recs[i], true)
	}
	var out api.ProduceResponse
	err := c.do(ctx, call{method: "POST", path: "/v1/topics/" + esc(topic) + "/records", body: req}, &out)
	return out.Results, err
}

// produceBody is a topic-level produce request with typed records.
type produceBody struct {
	Records       []api.Record       `json:"records"`
	Producer      *api.ProducerEpoch `json:"producer,omitempty"`
	BaseSequences map[string]int32   `json:"base_sequences,omitempty"`
}

// Do calls any route of the API — for routes without a typed method, such
// as /v1/admin/compact. in (if not nil) is sent as JSON and a 2xx JSON
// answer is decoded into out (if not nil). Only GET, HEAD and PUT calls
// are retried after an unknown outcome.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("client: path %q must start with /", path)
	}
	idem := method == http.MethodGet || method == http.MethodHead || method == http.MethodPut
	return c.do(ctx, call{method: method, path: path, body: in, idempotent: idem}, out)
}
