package kafkaapi

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// frameOf encodes a request as a frame body (without the size).
func frameOf(req kmsg.Request) []byte {
	buf := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, 1)
	buf = binary.BigEndian.AppendUint16(buf, 1)
	buf = append(buf, 'f')
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	return req.AppendTo(buf)
}

// FuzzRequests: any frame is decoded without panicking, and any request
// that decodes is handled without panicking (an answer or an error that
// closes the connection).
func FuzzRequests(f *testing.F) {
	for key, v := range versions {
		for _, ver := range []int16{v.min, v.max} {
			req := kmsg.RequestForKey(key)
			req.SetVersion(ver)
			f.Add(frameOf(req))
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: strp("fuzz")}}
	f.Add(frameOf(md))
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 11
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: "fuzz", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20}}}}
	f.Add(frameOf(fr))

	lim := broker.DefaultLimits()
	lim.MaxWait = 10 * time.Millisecond
	b := broker.New(offsets.New(memtable.New()), membucket.New(), broker.Config{Limits: lim})
	if _, err := b.CreateTopic(context.Background(), "fuzz", 2, offsets.DefaultTopicConfig()); err != nil {
		f.Fatal(err)
	}
	s := New(b, Config{Logger: slog.New(slog.DiscardHandler)})
	s.self = offsets.Node{ID: 1, Host: "127.0.0.1", Port: 9092}
	f.Fuzz(func(t *testing.T, frame []byte) {
		a, peer := net.Pipe()
		defer a.Close()
		defer peer.Close()
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		c := &conn{s: s, nc: a}
		req, resp, err := c.decode(frame)
		if err != nil || resp != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if resp, err = c.handle(ctx, req); err == nil && resp != nil {
			_ = c.write(req, resp)
		}
	})
}
