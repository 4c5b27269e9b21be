package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/streambed/streambed/pkg/api"
)

// Record is a record to produce or one that was consumed. Nil Key is a null
// key; nil Value is a tombstone. A zero-value Record (with a key and value
// set) is produced where Kafka's partitioner puts its key, or with the
// other unkeyed records of its batch: to produce to a chosen partition,
// set Partition and Pinned.
type Record struct {
	Topic string
	// Partition is where a consumed record was read from, or, when Pinned,
	// where a produced record goes. Unpinned, it is ignored on produce.
	Partition int32
	// Pinned makes a produced record go to Partition.
	Pinned    bool
	Offset    int64
	Timestamp time.Time // zero on produce: the broker's clock
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header is a record header; nil Value is a null value.
type Header struct {
	Key   string
	Value []byte
}

// AnyPartition is the partition of a record whose partition is chosen for
// it (the zero-value Record's, unpinned, works the same).
const AnyPartition int32 = -1

// InPartition returns r pinned to partition p.
func (r Record) InPartition(p int32) Record {
	r.Partition, r.Pinned = p, true
	return r
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

func textOrB64(b []byte) (text, b64 *string) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

// toWire encodes a record for a produce request, losslessly: text when
// valid UTF-8, base64 otherwise.
func toWire(r *Record, withPartition bool) api.Record {
	var out api.Record
	out.Key, out.KeyB64 = textOrB64(r.Key)
	out.Value, out.ValueB64 = textOrB64(r.Value)
	if !r.Timestamp.IsZero() {
		ms := r.Timestamp.UnixMilli()
		out.Timestamp = &ms
	}
	if withPartition && r.Pinned {
		p := r.Partition
		out.Partition = &p
	}
	for _, h := range r.Headers {
		hv, hb := textOrB64(h.Value)
		out.Headers = append(out.Headers, api.Header{Name: h.Key, Value: hv, ValueB64: hb})
	}
	return out
}

func wireBytes(text, b64 *string, js json.RawMessage) ([]byte, error) {
	switch {
	case b64 != nil:
		return base64.StdEncoding.DecodeString(*b64)
	case text != nil:
		return []byte(*text), nil
	case len(js) > 0 && string(js) != "null":
		return []byte(js), nil
	}
	return nil, nil
}

// fromWire decodes a consumed record.
func fromWire(topic string, partition int32, w *api.Record) (Record, error) {
	r := Record{Topic: topic, Partition: partition}
	if w.Partition != nil {
		r.Partition = *w.Partition
	}
	if w.Offset != nil {
		r.Offset = *w.Offset
	}
	if w.Timestamp != nil {
		r.Timestamp = time.UnixMilli(*w.Timestamp)
	}
	var err error
	if r.Key, err = wireBytes(w.Key, w.KeyB64, nil); err != nil {
		return r, fmt.Errorf("client: record key: %w", err)
	}
	if r.Value, err = wireBytes(w.Value, w.ValueB64, w.ValueJSON); err != nil {
		return r, fmt.Errorf("client: record value: %w", err)
	}
	for _, h := range w.Headers {
		v, err := wireBytes(h.Value, h.ValueB64, nil)
		if err != nil {
			return r, fmt.Errorf("client: header %s: %w", h.Name, err)
		}
		r.Headers = append(r.Headers, Header{Key: h.Name, Value: v})
	}
	return r, nil
}

// wireRecord is a consumed record as the server sends it (with topic when
// it comes from a group poll).
type wireRecord struct {
	Topic string `json:"topic"`
	api.Record
}
