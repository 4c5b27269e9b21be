package httpapi

import (
	"net/http"
	"strconv"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/offsets"
)

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) {
	l := s.b.Limits()
	s.writeJSON(w, http.StatusOK, api.Info{
		Name: "streambed", Version: Version, API: "v1", Backends: s.opts.Backends,
		Limits: api.Limits{
			MaxBodyBytes: s.opts.MaxBodyBytes, MaxRecordsPerRequest: l.MaxRecordsPerRequest,
			MaxRecordBytes: offsets.DefaultTopicConfig().MaxRecordBytes, MaxResponseBytes: l.MaxResponseBytes,
			MaxWaitMs: l.MaxWait.Milliseconds(), MaxHeadersPerRecord: l.MaxHeadersPerRecord,
		},
	})
}

func apiConfig(c offsets.TopicConfig) api.TopicConfig {
	return api.TopicConfig{
		RetentionMs: &c.RetentionMs, RetentionBytes: &c.RetentionBytes, CleanupPolicy: &c.CleanupPolicy,
		MaxRecordBytes: &c.MaxRecordBytes, DeleteRetentionMs: &c.DeleteRetentionMs,
		TimestampType: &c.TimestampType, SegmentBytes: &c.SegmentBytes,
	}
}

// mergeConfig applies the fields a request sets onto c.
func mergeConfig(c offsets.TopicConfig, in *api.TopicConfig) offsets.TopicConfig {
	if in == nil {
		return c
	}
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.RetentionMs, in.RetentionMs)
	set(&c.RetentionBytes, in.RetentionBytes)
	set(&c.MaxRecordBytes, in.MaxRecordBytes)
	set(&c.DeleteRetentionMs, in.DeleteRetentionMs)
	set(&c.SegmentBytes, in.SegmentBytes)
	if in.CleanupPolicy != nil {
		c.CleanupPolicy = *in.CleanupPolicy
	}
	if in.TimestampType != nil {
		c.TimestampType = *in.TimestampType
	}
	return c
}

func apiTopic(t offsets.Topic) api.Topic {
	return api.Topic{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Config: apiConfig(t.Config), CreatedMs: t.CreatedMs}
}

// topicParam validates the {topic} path parameter.
func (s *Server) topicParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("topic")
	if err := offsets.ValidateTopicName(name); err != nil {
		p := problemFor(err, false)
		p.Field = "topic"
		s.problem(w, r, p)
		return "", false
	}
	return name, true
}

// partitionParam validates the {partition} path parameter.
func (s *Server) partitionParam(w http.ResponseWriter, r *http.Request) (int32, bool) {
	raw := r.PathValue("partition")
	p, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || p < 0 {
		s.problem(w, r, fieldProblem("partition", "%q is not a partition number", raw))
		return 0, false
	}
	return int32(p), true
}

func (s *Server) listTopics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := s.pageLimit(w, r)
	if !ok {
		return
	}
	topics, next, err := s.b.ListTopics(r.Context(), q.Get("after"), limit)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	out := api.TopicList{Topics: make([]api.Topic, 0, len(topics)), Next: next}
	for _, t := range topics {
		if s.visible(r, auth.Topic, t.Name) {
			out.Topics = append(out.Topics, apiTopic(t))
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) createTopic(w http.ResponseWriter, r *http.Request) {
	var in api.CreateTopicRequest
	kafka, p := s.decodeTopicBody(w, r, &in)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	if !s.may(w, r, auth.Admin, auth.Topic, in.Name) {
		return
	}
	parts := int32(1)
	if in.Partitions != nil {
		parts = *in.Partitions
	}
	cfg := mergeConfig(offsets.DefaultTopicConfig(), in.Config)
	if err := applyKafka(&cfg, kafka); err != nil {
		s.fail(w, r, err, false)
		return
	}
	t, err := s.b.CreateTopic(r.Context(), in.Name, parts, cfg)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	w.Header().Set("Location", "/v1/topics/"+t.Name)
	s.writeJSON(w, http.StatusCreated, apiTopic(t))
}

func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	t, err := s.b.Store().Topic(r.Context(), name)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.writeJSON(w, http.StatusOK, apiTopic(t))
}

func (s *Server) updateTopic(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	var in api.UpdateTopicRequest
	kafka, p := s.decodeTopicBody(w, r, &in)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	var cfg *offsets.TopicConfig
	if in.Config != nil || len(kafka) > 0 {
		cur, err := s.b.Store().Topic(r.Context(), name)
		if err != nil {
			s.fail(w, r, err, false)
			return
		}
		merged := mergeConfig(cur.Config, in.Config)
		if err := applyKafka(&merged, kafka); err != nil {
			s.fail(w, r, err, false)
			return
		}
		if err := merged.Validate(); err != nil {
			s.fail(w, r, err, false) // before growing partitions: bad input changes nothing
			return
		}
		cfg = &merged
	}
	t, err := s.b.UpdateTopic(r.Context(), name, in.Partitions, cfg)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, apiTopic(t))
}

func (s *Server) deleteTopic(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	if err := s.b.DeleteTopic(r.Context(), name); err != nil {
		s.fail(w, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func apiPartition(topic string, st offsets.PartitionState) api.Partition {
	return api.Partition{Topic: topic, Partition: st.Partition, LogStartOffset: st.LogStart, LogEndOffset: st.LogEnd, Bytes: st.Bytes, LastAppendMs: st.LastAppendMs}
}

func (s *Server) listPartitions(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	states, err := s.b.Partitions(r.Context(), name)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	out := api.PartitionList{Partitions: make([]api.Partition, len(states))}
	for i, st := range states {
		out.Partitions[i] = apiPartition(name, st)
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getPartition(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	p, ok := s.partitionParam(w, r)
	if !ok {
		return
	}
	states, err := s.b.Partitions(r.Context(), name, p)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.writeJSON(w, http.StatusOK, apiPartition(name, states[0]))
}

func (s *Server) getOffsets(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	p, ok := s.partitionParam(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Has("timestamp") && q.Has("spec") {
		s.problem(w, r, fieldProblem("timestamp", "give timestamp or spec, not both"))
		return
	}
	if q.Has("timestamp") {
		ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil || ts < 0 {
			s.problem(w, r, fieldProblem("timestamp", "%q is not a timestamp in epoch milliseconds", q.Get("timestamp")))
			return
		}
		off, recTs, found, st, err := s.b.OffsetForTimestamp(r.Context(), name, p, ts)
		if err != nil {
			s.fail(w, r, err, false)
			return
		}
		out := api.OffsetLookup{Partition: p, Offset: off, LogStartOffset: st.LogStart, LogEndOffset: st.LogEnd}
		if found {
			out.Timestamp = &recTs
		}
		s.writeJSON(w, http.StatusOK, out)
		return
	}
	states, err := s.b.Partitions(r.Context(), name, p)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	st := states[0]
	out := api.OffsetLookup{Partition: p, LogStartOffset: st.LogStart, LogEndOffset: st.LogEnd}
	switch spec := q.Get("spec"); spec {
	case "", "latest":
		out.Offset = st.LogEnd
	case "earliest":
		out.Offset = st.LogStart
	default:
		s.problem(w, r, fieldProblem("spec", "%q: use earliest or latest", spec))
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) fence(w http.ResponseWriter, r *http.Request) {
	name, ok := s.topicParam(w, r)
	if !ok {
		return
	}
	p, ok := s.partitionParam(w, r)
	if !ok {
		return
	}
	var in api.FenceRequest
	if prob := s.decodeBody(w, r, &in); prob != nil {
		s.problem(w, r, prob)
		return
	}
	if err := s.b.SetFenceToken(r.Context(), name, p, in.Current, in.Token); err != nil {
		s.fail(w, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) newProducer(w http.ResponseWriter, r *http.Request) {
	id, err := s.b.AllocateProducerID(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusCreated, api.Producer{ProducerID: id, Epoch: 0})
}

// pageLimit reads a list's ?limit= (default 100, at most 1000).
func (s *Server) pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		s.problem(w, r, fieldProblem("limit", "%q must be between 1 and 1000", v))
		return 0, false
	}
	return n, true
}
