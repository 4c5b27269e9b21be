package kafkaapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/offsets"
)

// raw is a hand-driven connection: frames in, frames out.
type raw struct {
	t  *testing.T
	nc net.Conn
}

func dial(t *testing.T, addr string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc}
}

// send writes a request with the standard header.
func (r *raw) send(req kmsg.Request, corr int32) {
	r.t.Helper()
	buf := []byte{0, 0, 0, 0}
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(corr))
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = append(buf, "test"...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	r.write(buf)
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response into resp; it returns false if the connection
// closed instead.
func (r *raw) recv(resp kmsg.Response, corr int32) bool {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return false
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("no answer and the connection stayed open")
		}
		return false
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.nc, body); err != nil {
		r.t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatal(err)
	}
	return true
}

// closed reports whether the server closed the connection (without
// answering).
func (r *raw) closed() bool {
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.nc.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// batch encodes records as a RecordBatch with franz-go's own encoder.
func batch(t *testing.T, n int) []byte {
	t.Helper()
	rb := kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, LastOffsetDelta: int32(n - 1), NumRecords: int32(n),
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(), PartitionLeaderEpoch: -1}
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("value")}
		// Length is the record's size after the length itself: encode
		// with 0 (one byte) to learn it.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb.Records = recs
	rb.Length = int32(49 + len(recs)) // the header after the length field, then the records
	return fixCRC(rb.AppendTo(nil))
}

func fixCRC(b []byte) []byte {
	var rb kmsg.RecordBatch
	_ = rb.ReadFrom(b)
	rb.Length = int32(len(b) - 12)
	out := rb.AppendTo(nil)
	crc := crc32c(out[21:])
	binary.BigEndian.PutUint32(out[17:], crc)
	return out
}

func produceReq(topic string, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestBadInput: a broken frame or an unknown API closes the connection; a
// corrupt or invalid batch gets its error code and stores nothing; the
// node serves the next connection either way.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "in", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	good := batch(t, 3)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff
	badDelta := func() []byte {
		var rb kmsg.RecordBatch
		_ = rb.ReadFrom(good)
		rb.LastOffsetDelta = 5 // 3 records over 6 offsets
		return fixCRC(rb.AppendTo(nil))
	}()
	oldMagic := bytes.Clone(good)
	oldMagic[16] = 1
	for _, c := range []struct {
		name    string
		records []byte
		code    int16
	}{
		{"corrupt CRC", corrupt, kerr.CorruptMessage.Code},
		{"offset deltas with gaps", badDelta, kerr.InvalidRecord.Code},
		{"old message format", oldMagic, kerr.UnsupportedForMessageFormat.Code},
		{"truncated batch", good[:len(good)-3], kerr.CorruptMessage.Code},
		{"no batch", []byte{}, kerr.CorruptMessage.Code},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dial(t, e.node.addr)
			r.send(produceReq("in", c.records), 1)
			resp := kmsg.NewPtrProduceResponse()
			resp.Version = 7
			if !r.recv(resp, 1) {
				t.Fatal("connection closed")
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != c.code {
				t.Fatalf("error code %d (%v), want %d", code, kerr.ErrorForCode(code), c.code)
			}
		})
	}
	if st, _ := e.node.b.Partitions(e.ctx, "in", 0); st[0].LogEnd != 0 {
		t.Fatalf("bad batches stored %d records", st[0].LogEnd)
	}
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"negative size", []byte{0xff, 0xff, 0xff, 0xff}},
		{"oversized frame", []byte{0x7f, 0xff, 0xff, 0xff}},
		{"short header", []byte{0, 0, 0, 3, 0, 18, 0}},
		{"unknown API key", append([]byte{0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff}[:14], 0)},
		{"unsupported version", []byte{0, 0, 0, 10, 0, 0, 0, 99, 0, 0, 0, 1, 0xff, 0xff}},
		{"garbage body", []byte{0, 0, 0, 14, 0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dial(t, e.node.addr)
			r.write(c.frame)
			if !r.closed() {
				t.Fatal("the connection stayed open")
			}
		})
	}
	// ApiVersions of an unknown version is answered (v0, UNSUPPORTED_VERSION).
	r := dial(t, e.node.addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 99
	r.send(av, 7)
	avr := kmsg.NewPtrApiVersionsResponse()
	if !r.recv(avr, 7) || avr.ErrorCode != kerr.UnsupportedVersion.Code || len(avr.ApiKeys) == 0 {
		t.Fatalf("ApiVersions v99: %+v", avr)
	}
	// And the node still serves.
	cl := e.client(t, kgo.DefaultProduceTopic("in"))
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
