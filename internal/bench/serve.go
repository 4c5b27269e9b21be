package bench

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/streambed/streambed/internal/backend"
	"github.com/streambed/streambed/internal/faults"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/kafkaapi"
	"github.com/streambed/streambed/pkg/offsets"
)

// Server is a broker with both front doors, HTTP and Kafka, serving on
// loopback in this process, over storage wrapped in counting adapters.
type Server struct {
	URL       string
	Kafka     string // the Kafka listener's host:port
	Bucket    *faults.Bucket
	Table     *faults.Table
	Broker    *broker.Broker
	hs        *http.Server
	stopKafka context.CancelFunc
	kafkaDone chan error
}

// Serve starts a Server over be, configured as `streambed serve`
// configures its broker (cfg may tune group commit).
func Serve(be *backend.Backend, cfg broker.Config) (*Server, error) {
	s := &Server{Bucket: faults.WrapBucket(be.Bucket, nil), Table: faults.WrapTable(be.Table, nil)}
	cfg.SoleWriter = be.Metadata == "bolt"
	s.Broker = broker.New(offsets.New(s.Table), s.Bucket, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.hs = &http.Server{Handler: httpapi.New(s.Broker, httpapi.Options{}).Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln)
	s.URL = "http://" + ln.Addr().String()
	kln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var kctx context.Context
	kctx, s.stopKafka = context.WithCancel(context.Background())
	s.kafkaDone = make(chan error, 1)
	go func() { s.kafkaDone <- kafkaapi.New(s.Broker, kafkaapi.Config{NodeID: -1}).Serve(kctx, kln) }()
	s.Kafka = kln.Addr().String()
	return s, nil
}

// Close stops serving.
func (s *Server) Close() {
	s.Broker.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.hs.Shutdown(ctx)
	s.stopKafka()
	<-s.kafkaDone
}
