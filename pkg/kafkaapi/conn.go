package kafkaapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
)

// conn is one client connection. Requests are answered in order; see
// serveConn for which are handled concurrently.
type conn struct {
	s        *Server
	nc       net.Conn
	r        *bufio.Reader
	clientID string
	// SASL: the mechanism chosen by SaslHandshake, and the identity once
	// authenticated (the zero Identity without --auth).
	mechanism     string
	authenticated bool
	id            auth.Identity
	// v0SASL: a SaslHandshake v0 means the next frame is a raw token, not
	// a SaslAuthenticate request (the protocol before KIP-152).
	v0SASL bool
}

// errClose ends a connection: a broken frame, an unknown API, or a request
// before authentication. Kafka's broker closes the connection for these.
var errClose = errors.New("closing the connection")

// request is a decoded request with its header.
type request struct {
	key, version int16
	corr         int32
	kreq         kmsg.Request
	at           time.Time
}

// Pipelining: a client may send requests without waiting for answers
// (the Java client and librdkafka keep up to five produce requests in
// flight). Answers always go back in order. Produce requests are handled
// concurrently so that a connection's requests share group-commit flushes,
// yet each starts only once the one before it has queued its records, so
// they commit in the order they were sent; any other request waits until
// everything before it is answered, which keeps Kafka's one-at-a-time
// semantics for them.
const (
	maxInFlight      = 5        // requests read ahead of their answers
	maxInFlightBytes = 16 << 20 // their frames' bytes (one is always admitted)
)

// pending is a request read and not yet answered.
type pending struct {
	req   request
	resp  kmsg.Response
	err   error
	bytes int
	done  chan struct{}
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	c := &conn{s: s, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *pending, maxInFlight)
	written := make(chan struct{})
	var budget inflightBudget
	// The writer answers in order and closes the connection on the first
	// failure, which ends the reader too.
	go func() {
		defer close(written)
		for p := range queue {
			<-p.done
			budget.release(p.bytes)
			if p.err != nil {
				s.log.Debug("closing a Kafka connection", "client", nc.RemoteAddr(), "api", p.req.key, "err", p.err)
				cancel()
				nc.Close()
				continue
			}
			if p.resp == nil || ctx.Err() != nil {
				continue // acks=0 produce: no answer
			}
			if err := c.write(p.req, p.resp); err != nil {
				cancel()
				nc.Close()
			}
		}
	}()
	defer func() { close(queue); <-written }()
	var open []*pending          // requests read, perhaps not yet handled
	var lastQueued chan struct{} // closed once the last produce queued its records
	drain := func() {
		for _, q := range open {
			<-q.done
		}
		open = open[:0]
	}
	for ctx.Err() == nil {
		frame, err := c.readFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				s.log.Debug("kafka connection closed", "client", nc.RemoteAddr(), "err", err)
			}
			return
		}
		if c.v0SASL {
			drain()
			if err := c.authenticateV0(ctx, frame); err != nil {
				return
			}
			continue
		}
		p := &pending{bytes: len(frame), done: make(chan struct{})}
		if !budget.acquire(ctx, p.bytes) {
			return
		}
		var resp kmsg.Response
		p.req, resp, err = c.decode(frame)
		queue <- p
		switch {
		case err != nil:
			p.err = err
			close(p.done)
			return
		case resp != nil:
			p.resp = resp
			close(p.done)
			continue
		}
		if _, ok := p.req.kreq.(*kmsg.ProduceRequest); ok && c.mayProceed() {
			open = append(slices.DeleteFunc(open, isDone), p)
			prev, mine := lastQueued, make(chan struct{})
			lastQueued = mine
			go func() {
				defer close(p.done)
				var once sync.Once
				signal := func() { once.Do(func() { close(mine) }) }
				defer signal()
				if prev != nil {
					select {
					case <-prev:
					case <-ctx.Done():
						p.err = ctx.Err()
						return
					}
				}
				p.resp, p.err = c.handle(broker.WithQueued(ctx, signal), p.req)
			}()
			continue
		}
		// Anything else runs alone, after every earlier request.
		drain()
		p.resp, p.err = c.handle(ctx, p.req)
		close(p.done)
		if p.err != nil {
			return
		}
	}
}

func isDone(p *pending) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// mayProceed reports whether a request can be handled without first
// authenticating (it then fails in handle, in order, closing the
// connection).
func (c *conn) mayProceed() bool {
	return c.s.cfg.Auth == nil || c.authenticated
}

// inflightBudget bounds the bytes of requests read ahead of their answers;
// one request is always admitted, however large (frames are bounded).
type inflightBudget struct {
	mu    sync.Mutex
	bytes int
	freed chan struct{}
}

func (b *inflightBudget) acquire(ctx context.Context, n int) bool {
	for {
		b.mu.Lock()
		if b.bytes == 0 || b.bytes+n <= maxInFlightBytes {
			b.bytes += n
			b.mu.Unlock()
			return true
		}
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		wait := b.freed
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *inflightBudget) release(n int) {
	b.mu.Lock()
	b.bytes -= n
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// readFrame reads one size-prefixed request.
func (c *conn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 8 || n > c.s.cfg.MaxFrameBytes {
		return nil, fmt.Errorf("%w: a frame of %d bytes (limit %d)", errClose, n, c.s.cfg.MaxFrameBytes)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// decode parses a frame's header and body. An ApiVersions request of a
// version this server does not know is answered (as Kafka does, with
// UNSUPPORTED_VERSION and the supported versions) rather than refused.
func (c *conn) decode(frame []byte) (request, kmsg.Response, error) {
	r := kbin.Reader{Src: frame}
	req := request{key: r.Int16(), version: r.Int16(), corr: r.Int32(), at: time.Now()}
	clientID := r.NullableString()
	if r.Complete() != nil {
		return req, nil, fmt.Errorf("%w: truncated request header", errClose)
	}
	if clientID != nil {
		c.clientID = *clientID
	}
	kreq := kmsg.RequestForKey(req.key)
	v, supported := versions[req.key]
	if kreq == nil || !supported {
		return req, nil, fmt.Errorf("%w: API key %d is not supported", errClose, req.key)
	}
	if req.version < v.min || req.version > v.max {
		if req.key == kmsg.ApiVersions.Int16() {
			resp := apiVersionsResponse(0)
			resp.ErrorCode = errUnsupportedVersion
			req.version = 0
			return req, resp, nil
		}
		return req, nil, fmt.Errorf("%w: %s v%d is not supported (v%d-%d are)", errClose, kmsg.NameForKey(req.key), req.version, v.min, v.max)
	}
	kreq.SetVersion(req.version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if r.Complete() != nil {
		return req, nil, fmt.Errorf("%w: truncated header", errClose)
	}
	if err := kreq.ReadFrom(r.Src); err != nil {
		return req, nil, fmt.Errorf("%w: %s v%d: %v", errClose, kmsg.NameForKey(req.key), req.version, err)
	}
	req.kreq = kreq
	return req, nil, nil
}

// write sends a response frame: size, correlation id, the response header's
// tags when flexible (never for ApiVersions), the body.
func (c *conn) write(req request, resp kmsg.Response) error {
	resp.SetVersion(req.version)
	buf := make([]byte, 8, 256)
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[4:], uint32(req.corr))
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err := c.nc.Write(buf)
	return err
}

// handle answers one request; a nil response sends nothing.
func (c *conn) handle(ctx context.Context, req request) (kmsg.Response, error) {
	if c.s.cfg.Auth != nil && !c.authenticated {
		switch req.kreq.(type) {
		case *kmsg.ApiVersionsRequest, *kmsg.SASLHandshakeRequest, *kmsg.SASLAuthenticateRequest:
		default:
			return nil, fmt.Errorf("%w: %s before authenticating", errClose, kmsg.NameForKey(req.key))
		}
	} else if c.authenticated && !c.s.cfg.Auth.Valid(c.id) {
		return nil, fmt.Errorf("%w: the credential expired or was revoked", errClose)
	}
	h := handlerFor(req.key)
	rctx, cancel := context.WithTimeout(ctx, requestTimeout(req.kreq))
	defer cancel()
	return h(rctx, c, req.kreq)
}

// requestTimeout bounds a request's handling: its own timeout (produce),
// its wait (fetch), plus a margin for storage.
func requestTimeout(kreq kmsg.Request) time.Duration {
	const base = 30 * time.Second
	switch r := kreq.(type) {
	case *kmsg.FetchRequest:
		return base + time.Duration(r.MaxWaitMillis)*time.Millisecond
	case *kmsg.JoinGroupRequest:
		// A classic JoinGroup waits for the other members to rejoin.
		return base + time.Duration(max(r.RebalanceTimeoutMillis, r.SessionTimeoutMillis))*time.Millisecond
	case kmsg.TimeoutRequest:
		return base + time.Duration(max(r.Timeout(), 0))*time.Millisecond
	}
	return base
}
