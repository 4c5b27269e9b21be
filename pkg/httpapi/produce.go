package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// decodeRecords checks the per-request record limit and decodes request
// records, naming the first bad field.
func (s *Server) decodeRecords(raws []json.RawMessage, allowPartition bool) ([]broker.ProduceRecord, *api.Problem) {
	if limit := s.b.Limits().MaxRecordsPerRequest; len(raws) > limit {
		p := api.NewProblem(api.CodeTooManyRecords, fmt.Sprintf("%d records, the limit is %d per request", len(raws), limit))
		p.Field = "records"
		return nil, p
	}
	if raws == nil {
		return nil, fieldProblem("records", "is required: an array of records")
	}
	out := make([]broker.ProduceRecord, len(raws))
	for i, raw := range raws {
		rec, p := decodeRecord(raw, fmt.Sprintf("records[%d]", i), allowPartition)
		if p != nil {
			return nil, p
		}
		out[i] = rec
	}
	return out, nil
}

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
	var in api.ProduceRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	recs, p := s.decodeRecords(in.Records, true)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	opt := broker.ProduceOptions{IdempotencyKey: key, Principal: principal(r)}
	if in.Producer != nil {
		opt.Producer = &broker.ProducerSession{ID: in.Producer.ID, Epoch: in.Producer.Epoch, BaseSequences: map[int32]int32{}}
		for k, seq := range in.BaseSequences {
			part, err := strconv.ParseInt(k, 10, 32)
			if err != nil || part < 0 {
				s.problem(w, r, fieldProblem("base_sequences", "key %q is not a partition number", k))
				return
			}
			opt.Producer.BaseSequences[int32(part)] = seq
		}
	} else if len(in.BaseSequences) > 0 {
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
	var in api.PartitionProduceRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	recs, p := s.decodeRecords(in.Records, false)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	req := broker.PartitionProduce{Records: make([]segments.Record, len(recs)), ExpectedOffset: -1, FenceToken: in.FencingToken}
	for i := range recs {
		req.Records[i] = recs[i].Record
	}
	if in.ExpectedOffset != nil {
		if *in.ExpectedOffset < 0 {
			s.problem(w, r, fieldProblem("expected_offset", "%d is negative", *in.ExpectedOffset))
			return
		}
		req.ExpectedOffset = *in.ExpectedOffset
	}
	if pr := in.Producer; pr != nil {
		if pr.ID < 0 || pr.Epoch < 0 || pr.BaseSequence < 0 {
			s.problem(w, r, fieldProblem("producer", "id, epoch and base_sequence must not be negative"))
			return
		}
		req.Producer = &offsets.ProducerID{ID: pr.ID, Epoch: pr.Epoch, FirstSeq: pr.BaseSequence}
	}
	res, err := s.b.ProducePartition(r.Context(), name, part, req)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, api.PartitionProduceResponse{Partition: part, BaseOffset: res.Base, LastOffset: res.Last, LogEndOffset: res.LogEnd, Duplicate: res.Duplicate})
}
