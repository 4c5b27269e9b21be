package kafkaapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/streambed/streambed/internal/authtest"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/kafkaapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// TestSASL: with a policy, a connection authenticates with PLAIN (a
// Streambed token) or OAUTHBEARER (a JWT) before anything else, and the
// policy's grants apply per topic.
func TestSASL(t *testing.T) {
	pol, signer := authtest.Policy(t)
	az, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	store := offsets.New(memtable.New())
	n := startNode(t, store, membucket.New(), kafkaapi.Config{NodeID: -1, Auth: az})
	ctx := context.Background()
	for _, name := range []string{"orders", "secret"} {
		if _, err := n.b.CreateTopic(ctx, name, 1, offsets.DefaultTopicConfig()); err != nil {
			t.Fatal(err)
		}
	}
	client := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.addr), kgo.RetryTimeout(3 * time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	plainAs := func(token string) kgo.Opt {
		return kgo.SASL(plain.Auth{User: "someone", Pass: token}.AsMechanism())
	}

	writer := client(plainAs(authtest.WriterToken))
	if err := writer.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("writer to orders: %v", err)
	}
	err = writer.ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("no")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("writer to secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// A JWT principal reads what it may, and not what it may not.
	jwt := signer.JWT(t, "reader", authtest.Audience, time.Now().Add(time.Hour))
	reader := client(kgo.SASL(oauth.Auth{Token: jwt}.AsMechanism()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders": {0: kgo.NewOffset().AtStart()}}))
	fs := reader.PollFetches(ctx)
	if err := fs.Err(); err != nil || len(fs.Records()) != 1 || string(fs.Records()[0].Value) != "ok" {
		t.Fatalf("reader: %v %d records", err, len(fs.Records()))
	}
	denied := client(kgo.SASL(oauth.Auth{Token: jwt}.AsMechanism()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"secret": {0: kgo.NewOffset().AtStart()}}))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	fs = denied.PollFetches(pctx)
	cancel()
	if !errors.Is(fs.Err(), kerr.TopicAuthorizationFailed) {
		t.Fatalf("reader of secret: %v, want TOPIC_AUTHORIZATION_FAILED", fs.Err())
	}

	// A wrong token and an expired JWT fail authentication.
	for name, opt := range map[string]kgo.Opt{
		"wrong token": plainAs("sbt_not-a-token"),
		"expired JWT": kgo.SASL(oauth.Auth{Token: signer.JWT(t, "reader", authtest.Audience, time.Now().Add(-time.Minute))}.AsMechanism()),
	} {
		cl := client(opt)
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	// Without SASL, nothing but ApiVersions and the handshake is served:
	// a Metadata request closes the connection.
	r := dial(t, n.addr)
	r.send(kmsg.NewPtrMetadataRequest(), 1)
	if !r.closed() {
		t.Fatal("an unauthenticated Metadata request was served")
	}
	if st, _ := n.b.Partitions(ctx, "secret", 0); st[0].LogEnd != 0 {
		t.Fatalf("a refused produce stored %d records", st[0].LogEnd)
	}
}

// TestInitProducerID: ids are allocated, epochs bumped for a producer
// that asks with its old id (KIP-360), and a transactional id gets a
// clear, non-retriable error.
func TestInitProducerID(t *testing.T) {
	e := newEnv(t)
	cl := e.client(t)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.ProducerID, req.ProducerEpoch = 4, -1, -1
	first, err := req.RequestWith(e.ctx, cl)
	if err != nil || first.ErrorCode != 0 || first.ProducerID < 0 || first.ProducerEpoch != 0 {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := req.RequestWith(e.ctx, cl)
	if err != nil || second.ProducerID == first.ProducerID {
		t.Fatalf("second id %d equals the first %d (%v)", second.ProducerID, first.ProducerID, err)
	}
	bump := kmsg.NewPtrInitProducerIDRequest()
	bump.Version, bump.ProducerID, bump.ProducerEpoch = 4, first.ProducerID, first.ProducerEpoch
	bumped, err := bump.RequestWith(e.ctx, cl)
	if err != nil || bumped.ProducerID != first.ProducerID || bumped.ProducerEpoch != 1 {
		t.Fatalf("bump: %+v %v", bumped, err)
	}
	tx := kmsg.NewPtrInitProducerIDRequest()
	tx.Version, tx.ProducerID, tx.ProducerEpoch, tx.TransactionalID = 4, -1, -1, new("tx-1")
	// Sent on a raw connection: a client looks for a transaction
	// coordinator first, which is not offered.
	r := dial(t, e.node.addr)
	r.send(tx, 1)
	txr := kmsg.NewPtrInitProducerIDResponse()
	txr.Version = 4
	if !r.recv(txr, 1) {
		t.Fatal("connection closed")
	}
	if kerr.IsRetriable(kerr.ErrorForCode(txr.ErrorCode)) || txr.ErrorCode == 0 {
		t.Fatalf("transactional: code %d (%v), want a non-retriable error", txr.ErrorCode, kerr.ErrorForCode(txr.ErrorCode))
	}
}

// TestIdempotentDuplicate: a retried idempotent batch is answered with
// its original offset and stored once; a sequence gap is refused.
func TestIdempotentDuplicate(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "idem", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	cl := e.client(t)
	idr := kmsg.NewPtrInitProducerIDRequest()
	idr.ProducerID, idr.ProducerEpoch = -1, -1
	id, err := idr.RequestWith(e.ctx, cl)
	if err != nil || id.ErrorCode != 0 {
		t.Fatal(err, id)
	}
	withSeq := func(seq int32, n int) []byte {
		var rb kmsg.RecordBatch
		_ = rb.ReadFrom(batch(t, n))
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = id.ProducerID, id.ProducerEpoch, seq
		return fixCRC(rb.AppendTo(nil))
	}
	send := func(records []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		resp, err := produceReq("idem", records).RequestWith(e.ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	a := send(withSeq(0, 3))
	b := send(withSeq(3, 2))
	dup := send(withSeq(3, 2))
	if a.ErrorCode != 0 || b.ErrorCode != 0 || b.BaseOffset != 3 {
		t.Fatalf("appends: %+v %+v %s", a, b, *a.ErrorMessage)
	}
	if dup.ErrorCode != 0 || dup.BaseOffset != b.BaseOffset {
		t.Fatalf("duplicate: code %d offset %d, want offset %d", dup.ErrorCode, dup.BaseOffset, b.BaseOffset)
	}
	gap := send(withSeq(9, 1))
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: code %d (%v)", gap.ErrorCode, kerr.ErrorForCode(gap.ErrorCode))
	}
	if st, _ := e.node.b.Partitions(e.ctx, "idem", 0); st[0].LogEnd != 5 {
		t.Fatalf("log end %d, want 5", st[0].LogEnd)
	}
}

// TestAcksZero: a produce with acks=0 gets no response, and its records
// are stored all the same.
func TestAcksZero(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "fire", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	r := dial(t, e.node.addr)
	req := produceReq("fire", batch(t, 4))
	req.Acks = 0
	r.send(req, 1)
	// The next request's answer is the first thing on the wire.
	r.send(kmsg.NewPtrApiVersionsRequest(), 2)
	if !r.recv(kmsg.NewPtrApiVersionsResponse(), 2) {
		t.Fatal("no answer to the request after an acks=0 produce")
	}
	waitFor(t, func() bool {
		st, _ := e.node.b.Partitions(e.ctx, "fire", 0)
		return st[0].LogEnd == 4
	})
}

// TestLongPoll: a fetch waiting on max_wait_ms/min_bytes is woken by a
// produce through the same node and by one through another node over the
// same store.
func TestLongPoll(t *testing.T) {
	store := offsets.New(memtable.New())
	bucket := membucket.New()
	a := startNode(t, store, bucket, kafkaapi.Config{NodeID: 1})
	b := startNode(t, store, bucket, kafkaapi.Config{NodeID: 2})
	ctx := context.Background()
	if _, err := a.b.CreateTopic(ctx, "wait", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		producer *node
	}{{"same node", a}, {"other node", b}} {
		t.Run(c.name, func(t *testing.T) {
			st, _ := a.b.Partitions(ctx, "wait", 0)
			end := st[0].LogEnd
			r := dial(t, a.addr)
			fr := kmsg.NewPtrFetchRequest()
			fr.Version, fr.ReplicaID, fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes = 11, -1, 60_000, 1, 1<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = "wait"
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.LogStartOffset, fp.CurrentLeaderEpoch = 0, end, 1<<20, -1, -1
			ft.Partitions = append(ft.Partitions, fp)
			fr.Topics = append(fr.Topics, ft)
			r.send(fr, 1)
			time.Sleep(100 * time.Millisecond) // let the fetch start waiting (not needed for correctness)
			p := dial(t, c.producer.addr)
			p.send(produceReq("wait", batch(t, 2)), 1)
			pr := kmsg.NewPtrProduceResponse()
			pr.Version = 7
			if !p.recv(pr, 1) || pr.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("produce: %+v", pr)
			}
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 11
			// recv waits up to its own deadline, well under max_wait: an
			// answer means the produce woke the fetch.
			if !r.recv(resp, 1) {
				t.Fatal("the fetch was not answered")
			}
			got := resp.Topics[0].Partitions[0]
			if got.ErrorCode != 0 || got.HighWatermark != end+2 || len(got.RecordBatches) == 0 {
				t.Fatalf("fetch: code %d hw %d, %d bytes", got.ErrorCode, got.HighWatermark, len(got.RecordBatches))
			}
		})
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEmptyFetchIsNotNull: a partition with nothing to return carries an
// empty record set, not a null one (librdkafka fails to parse null).
func TestEmptyFetchIsNotNull(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "empty", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int16{4, 11, 12} {
		r := dial(t, e.node.addr)
		fr := kmsg.NewPtrFetchRequest()
		fr.Version, fr.ReplicaID, fr.MaxWaitMillis, fr.MaxBytes = v, -1, 0, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "empty"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		r.send(fr, 1)
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		if !r.recv(resp, 1) {
			t.Fatal("connection closed")
		}
		if got := resp.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.RecordBatches == nil {
			t.Fatalf("v%d: code %d, record set nil: %v", v, got.ErrorCode, got.RecordBatches == nil)
		}
	}
}

// TestPipelinedProduceKeepsOrder: produce requests sent back to back on
// one connection, without waiting for answers, are handled together yet
// commit in the order sent (an idempotent producer's sequences would
// refuse anything else), and are answered in order; a request of another
// kind after them sees all of them.
func TestPipelinedProduceKeepsOrder(t *testing.T) {
	e := newEnv(t)
	if _, err := e.node.b.CreateTopic(e.ctx, "piped", 1, offsets.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	idr := kmsg.NewPtrInitProducerIDRequest()
	idr.ProducerID, idr.ProducerEpoch = -1, -1
	id, err := idr.RequestWith(e.ctx, e.client(t))
	if err != nil || id.ErrorCode != 0 {
		t.Fatal(err, id)
	}
	r := dial(t, e.node.addr)
	const requests, per = 20, 3
	for i := range requests {
		var rb kmsg.RecordBatch
		_ = rb.ReadFrom(batch(t, per))
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = id.ProducerID, id.ProducerEpoch, int32(i*per)
		r.send(produceReq("piped", fixCRC(rb.AppendTo(nil))), int32(i))
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "piped"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	r.send(lo, requests)
	for i := range requests {
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 7
		if !r.recv(resp, int32(i)) {
			t.Fatalf("connection closed at answer %d", i)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(i*per) {
			t.Fatalf("request %d: code %v, base offset %d", i, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
		}
	}
	lor := kmsg.NewPtrListOffsetsResponse()
	lor.Version = 4
	if !r.recv(lor, requests) || lor.Topics[0].Partitions[0].Offset != requests*per {
		t.Fatalf("list offsets after the produces: %+v", lor.Topics[0].Partitions[0])
	}
}
