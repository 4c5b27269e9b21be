// Package kafkaapi is Streambed's Kafka front end: a listener that speaks
// the Kafka wire protocol to Kafka clients (kcat, librdkafka, the Java
// client, franz-go, kafkajs, Spark's Kafka source) and turns their
// requests into calls on pkg/broker, as pkg/httpapi does for HTTP. One
// broker, two front doors.
//
// Nodes are stateless. Each registers itself (a lease it renews) in the
// metadata store with the address clients should use; Metadata lists the
// live nodes and names, for each partition, one of them as its "leader"
// by a hash of the partition, a hint for locality only: every node serves
// every partition, so NOT_LEADER is never answered, and leader epochs are
// always 0. Behind one load balancer, every node advertises the balancer's
// address under one shared node id.
//
// Requests and responses are franz-go's kmsg types; nothing of the wire
// format is written by hand but the frame (a length and the header).
package kafkaapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
)

// Config configures a Server. Zero values take the defaults given.
type Config struct {
	// Advertised is the host:port clients are told to connect to (default:
	// the listener's address).
	Advertised string
	// NodeID is this node's id (negative: derived from Advertised, so
	// nodes behind one address share one id).
	NodeID int32
	Rack   string
	// ClusterID is reported in Metadata and DescribeCluster (default
	// "streambed").
	ClusterID string
	// Auth, when set, makes every connection authenticate with SASL
	// (PLAIN with a Streambed token as the password, or OAUTHBEARER with a
	// JWT the policy trusts) and checks the policy's grants per topic.
	Auth *auth.Authorizer
	// TLS, when set, serves TLS.
	TLS *tls.Config
	// AutoCreateTopics creates a topic a Metadata request names, with
	// DefaultPartitions partitions, as Kafka's auto.create.topics.enable.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// MaxFrameBytes bounds one request (default 64 MiB, Kafka's
	// socket.request.max.bytes is 100 MiB); a larger one closes the
	// connection.
	MaxFrameBytes int32
	// RegistrationTTL is how long a node's registration lasts unless
	// renewed (default 30 s; renewed every third of it).
	RegistrationTTL time.Duration
	Logger          *slog.Logger
}

// Server serves the Kafka protocol over a broker.
type Server struct {
	b     *broker.Broker
	cfg   Config
	log   *slog.Logger
	store *offsets.Store

	self offsets.Node

	nodesMu sync.Mutex
	nodes   []offsets.Node
	nodesAt time.Time

	ids topicIDs

	connsMu sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// New returns a Server over b.
func New(b *broker.Broker, cfg Config) *Server {
	if cfg.ClusterID == "" {
		cfg.ClusterID = "streambed"
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 64 << 20
	}
	if cfg.RegistrationTTL <= 0 {
		cfg.RegistrationTTL = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{b: b, cfg: cfg, log: cfg.Logger, store: b.Store(), conns: map[net.Conn]struct{}{}}
}

// nodeIDFor derives a node id from an advertised address.
func nodeIDFor(advertised string) int32 {
	h := fnv.New32a()
	h.Write([]byte(advertised))
	return int32(h.Sum32() & 0x7fffffff)
}

// Serve accepts connections on ln until ctx ends (or ln fails), keeping
// this node registered meanwhile. It returns once every connection has
// closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	adv := s.cfg.Advertised
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, portS, err := net.SplitHostPort(adv)
	if err != nil {
		return fmt.Errorf("kafkaapi: advertised address %q: %w", adv, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("kafkaapi: advertised port %q", portS)
	}
	id := s.cfg.NodeID
	if id < 0 {
		id = nodeIDFor(adv)
	}
	s.self = offsets.Node{ID: id, Host: host, Port: int32(port), Rack: s.cfg.Rack}
	if err := s.store.RegisterNode(ctx, s.self, s.cfg.RegistrationTTL); err != nil {
		s.log.Warn("registering this Kafka node; clients see it once a renewal succeeds", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.renew(ctx)
	}()
	go func() {
		<-ctx.Done()
		ln.Close()
		s.closeConns()
	}()
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			cancel()
			s.wg.Wait()
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.store.DeregisterNode(dctx, s.self.ID)
			dcancel()
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.connsMu.Lock()
		s.conns[nc] = struct{}{}
		s.connsMu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.connsMu.Lock()
				delete(s.conns, nc)
				s.connsMu.Unlock()
			}()
			s.serveConn(ctx, nc)
		}()
	}
}

func (s *Server) closeConns() {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// renew keeps this node's registration alive until ctx ends.
func (s *Server) renew(ctx context.Context) {
	t := time.NewTicker(s.cfg.RegistrationTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.store.RegisterNode(ctx, s.self, s.cfg.RegistrationTTL); err != nil && ctx.Err() == nil {
				s.log.Warn("renewing this Kafka node's registration", "err", err)
			}
		}
	}
}

// liveNodes returns the registered nodes (this one always among them),
// cached briefly.
func (s *Server) liveNodes(ctx context.Context) []offsets.Node {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if time.Since(s.nodesAt) < 2*time.Second && s.nodes != nil {
		return s.nodes
	}
	nodes, err := s.store.LiveNodes(ctx)
	if err != nil {
		s.log.Debug("listing Kafka nodes; answering with this one", "err", err)
		nodes = nil
	}
	found := false
	for _, n := range nodes {
		found = found || n.ID == s.self.ID
	}
	if !found {
		nodes = append(nodes, s.self)
	}
	s.nodes, s.nodesAt = nodes, time.Now()
	return nodes
}

// leaderOf names the node a partition's clients are pointed at: a hash of
// the partition over the live nodes, so load spreads and stays put while
// the set of nodes does.
func leaderOf(nodes []offsets.Node, topicID string, p int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(topicID))
	h.Write([]byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p)})
	return nodes[h.Sum32()%uint32(len(nodes))].ID
}
