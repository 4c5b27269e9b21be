package segments

import (
	"fmt"
	"strings"
)

// Record is one Kafka record. A nil Key is a null key; a nil Value is a
// tombstone (distinct from an empty value).
type Record struct {
	Offset    int64 // absolute offset; assigned on read
	Timestamp int64 // milliseconds since the Unix epoch
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header is one record header. Order is significant and names may repeat,
// as in Kafka. A nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Compression is a Kafka batch compression codec (attributes bits 0-2).
type Compression int8

const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLZ4    Compression = 3
	CompressionZstd   Compression = 4
)

// DefaultCompression is what Streambed compresses the batches it encodes
// with (those of the HTTP API, and key compaction's rewrites). gzip, at
// its fastest level: every Kafka client decodes it without plugins
// (kafkajs needs one for any other codec), and it encodes about as fast
// as zstd for nearly the same size.
const DefaultCompression = CompressionGzip

var compressionNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

func (c Compression) String() string {
	if c >= 0 && int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", int8(c))
}

// ParseCompression accepts the names Kafka uses for compression.type.
func ParseCompression(s string) (Compression, error) {
	for i, n := range compressionNames {
		if strings.EqualFold(s, n) {
			return Compression(i), nil
		}
	}
	if s == "" {
		return CompressionNone, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", s)
}

// Size is an estimate of the record's footprint, used for byte limits.
// It counts payload bytes plus a small fixed overhead per field, close to the
// record's encoded size without encoding it.
func (r *Record) Size() int {
	n := 16 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 4 + len(h.Key) + len(h.Value)
	}
	return n
}
