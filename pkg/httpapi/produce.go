package httpapi

import (
	"net/http"
	"regexp"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

func (s *Server) produce(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !idempotencyKeyPattern.MatchString(key) {
		p := api.NewProblem(api.CodeInvalidRequest, "Idempotency-Key must be 1-255 printable ASCII characters")
		p.Field = "Idempotency-Key"
		s.problem(w, r, p)
		return
	}
	in, p := s.readProduce(w, r, false)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	recs := in.records
	opt := broker.ProduceOptions{IdempotencyKey: key, Principal: principal(r)}
	if in.producer != nil {
		opt.Producer = &broker.ProducerSession{ID: in.producer.ID, Epoch: in.producer.Epoch, BaseSequences: in.baseSequences}
		if opt.Producer.BaseSequences == nil {
			opt.Producer.BaseSequences = map[int32]int32{}
		}
	} else if len(in.baseSequences) > 0 {
		s.problem(w, r, fieldProblem("base_sequences", "needs a producer"))
		return
	}
	results, err := s.b.Produce(r.Context(), name, recs, opt)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	out := api.ProduceResponse{Results: make([]api.RecordResult, len(results))}
	if t, err := s.b.Topic(r.Context(), name); err == nil {
		out.PartitionCount = t.Partitions
	}
	var firstErr error
	for i, res := range results {
		if res.Err != nil {
			out.FailedRecordCount++
			out.Results[i].Error = errorRef(res.Err)
			if firstErr == nil {
				firstErr = res.Err
			}
			continue
		}
		out.Results[i] = api.RecordResult{Partition: &res.Partition, Offset: &res.Offset, Timestamp: &res.Timestamp}
	}
	switch {
	case out.FailedRecordCount == 0:
		s.writeJSON(w, http.StatusOK, out)
	case out.FailedRecordCount == len(results) && allSameCode(out.Results):
		s.fail(w, r, firstErr, true) // nothing was appended: a plain error
	default:
		s.writeJSON(w, http.StatusMultiStatus, out)
	}
}

func allSameCode(rs []api.RecordResult) bool {
	for _, r := range rs {
		if r.Error == nil || r.Error.Code != rs[0].Error.Code {
			return false
		}
	}
	return true
}

func (s *Server) producePartition(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	part, ok := s.partitionParam(w, r)
	if !ok {
		return
	}
	in, p := s.readProduce(w, r, true)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	req := broker.PartitionProduce{Records: make([]segments.Record, len(in.records)), ExpectedOffset: -1, FenceToken: in.fencingToken}
	for i := range in.records {
		req.Records[i] = in.records[i].Record
	}
	if in.expectedOffset != nil {
		if *in.expectedOffset < 0 {
			s.problem(w, r, fieldProblem("expected_offset", "%d is negative", *in.expectedOffset))
			return
		}
		req.ExpectedOffset = *in.expectedOffset
	}
	if pr := in.producer; pr != nil {
		if pr.ID < 0 || pr.Epoch < 0 || in.baseSequence < 0 {
			s.problem(w, r, fieldProblem("producer", "id, epoch and base_sequence must not be negative"))
			return
		}
		req.Producer = &offsets.ProducerID{ID: pr.ID, Epoch: pr.Epoch, FirstSeq: in.baseSequence}
	}
	res, err := s.b.ProducePartition(r.Context(), name, part, req)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, api.PartitionProduceResponse{Partition: part, BaseOffset: res.Base, LastOffset: res.Last, LogEndOffset: res.LogEnd, Duplicate: res.Duplicate})
}

// readProduce reads and decodes a produce body.
func (s *Server) readProduce(w http.ResponseWriter, r *http.Request, partitionLevel bool) (produceBody, *api.Problem) {
	if p := checkJSONContentType(r); p != nil {
		return produceBody{}, p
	}
	body, p := s.readBody(w, r)
	if p != nil {
		return produceBody{}, p
	}
	return decodeProduce(body, partitionLevel, s.b.Limits().MaxRecordsPerRequest)
}
