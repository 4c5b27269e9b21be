package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
)

func (s *Server) groupParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	g := r.PathValue("group")
	if err := offsets.ValidateGroupName(g); err != nil {
		s.fail(w, r, err, false)
		return "", false
	}
	return g, true
}

func toOffsetsTPs(in []api.TopicPartitions) []offsets.TopicPartitions {
	if in == nil {
		return nil
	}
	out := make([]offsets.TopicPartitions, len(in))
	for i, t := range in {
		out[i] = offsets.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions}
	}
	return out
}

func toAPITPs(in []offsets.TopicPartitions) []api.TopicPartitions {
	out := make([]api.TopicPartitions, len(in))
	for i, t := range in {
		out[i] = api.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions}
	}
	return out
}

func heartbeatFrom(group string, in api.HeartbeatRequest) (broker.Heartbeat, *api.Problem) {
	for i, o := range in.Owned {
		for _, p := range o.Partitions {
			if p < 0 {
				return broker.Heartbeat{}, fieldProblem(fmt.Sprintf("owned[%d].partitions", i), "%d is negative", p)
			}
		}
	}
	return broker.Heartbeat{
		Group: group, MemberID: in.MemberID, MemberEpoch: in.MemberEpoch, Topics: in.Topics,
		Owned: toOffsetsTPs(in.Owned), SessionTimeout: time.Duration(in.SessionTimeoutMs) * time.Millisecond,
		Assignor: in.Assignor, ClientID: in.ClientID,
	}, nil
}

func heartbeatResponse(a broker.HeartbeatResult) api.HeartbeatResponse {
	return api.HeartbeatResponse{MemberID: a.MemberID, MemberEpoch: a.MemberEpoch, HeartbeatIntervalMs: a.HeartbeatInterval.Milliseconds(), Assignment: toAPITPs(a.Assignment)}
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	var in api.HeartbeatRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	h, p := heartbeatFrom(g, in)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	if !s.mayTopics(w, r, auth.Consume, in.Topics) {
		return
	}
	h.Principal = principal(r)
	a, err := s.b.Heartbeat(r.Context(), h)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, heartbeatResponse(a))
}

func commitsFrom(in []api.OffsetCommit) []offsets.CommittedOffset {
	out := make([]offsets.CommittedOffset, len(in))
	for i, o := range in {
		out[i] = offsets.CommittedOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Metadata: o.Metadata}
	}
	return out
}

func (s *Server) poll(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	var in api.PollRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	h, p := heartbeatFrom(g, in.HeartbeatRequest)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	if !s.mayTopics(w, r, auth.Consume, in.Topics) || !s.mayTopics(w, r, auth.Consume, commitTopics(in.Offsets)) {
		return
	}
	l := s.b.Limits()
	h.Principal = principal(r)
	req := broker.Poll{Heartbeat: h, Positions: commitsFrom(in.Offsets), AutoOffsetReset: in.AutoOffsetReset, MaxRecords: 500, MaxBytes: l.MaxResponseBytes * 2 / 3,
		Authorize: s.topicAuthorizer(r, auth.Consume)}
	if in.Commit != nil && !*in.Commit {
		req.NoCommit = true
	}
	switch {
	case in.MaxRecords != nil && (*in.MaxRecords < 1 || *in.MaxRecords > 10000):
		s.problem(w, r, fieldProblem("max_records", "%d must be between 1 and 10000", *in.MaxRecords))
		return
	case in.MaxBytes != nil && (*in.MaxBytes < 1 || *in.MaxBytes > l.MaxResponseBytes):
		s.problem(w, r, fieldProblem("max_bytes", "%d must be between 1 and %d", *in.MaxBytes, l.MaxResponseBytes))
		return
	case in.WaitMs != nil && (*in.WaitMs < 0 || *in.WaitMs > l.MaxWait.Milliseconds()):
		s.problem(w, r, fieldProblem("wait_ms", "%d must be between 0 and %d", *in.WaitMs, l.MaxWait.Milliseconds()))
		return
	}
	if in.MaxRecords != nil {
		req.MaxRecords = *in.MaxRecords
	}
	if in.MaxBytes != nil {
		req.MaxBytes = *in.MaxBytes
	}
	if in.WaitMs != nil {
		req.Wait = time.Duration(*in.WaitMs) * time.Millisecond
	}
	format, err := parseFormat(in.Format)
	if err != nil {
		s.problem(w, r, fieldProblem("format", "%v", err))
		return
	}
	res, err := s.b.Poll(r.Context(), req)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	hb, _ := json.Marshal(heartbeatResponse(res.HeartbeatResult))
	body := append(make([]byte, 0, 4096), hb[:len(hb)-1]...) // reopen the object
	body = append(body, `,"records":[`...)
	for i := range res.Records {
		if i > 0 {
			body = append(body, ',')
		}
		rec := &res.Records[i]
		body = appendRecord(body, rec.Topic, rec.Partition, &rec.Record, format)
	}
	body = append(body, `],"offsets":[`...)
	for i, o := range res.Positions {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"topic":`...)
		body = appendString(body, o.Topic)
		body = fmt.Appendf(body, `,"partition":%d,"offset":%d}`, o.Partition, o.Offset)
	}
	body = append(body, ']')
	if res.CommitErr != nil {
		ref, _ := json.Marshal(errorRef(res.CommitErr))
		body = append(body, `,"commit_error":`...)
		body = append(body, ref...)
	}
	body = append(body, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Server) commitOffsets(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	var in api.CommitRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	if len(in.Offsets) == 0 {
		s.problem(w, r, fieldProblem("offsets", "commit at least one offset"))
		return
	}
	if !s.mayTopics(w, r, auth.Consume, commitTopics(in.Offsets)) {
		return
	}
	if err := s.b.CommitOffsetsAs(r.Context(), principal(r), g, in.MemberID, in.MemberEpoch, commitsFrom(in.Offsets)); err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.listOffsets(w, r)
}

func (s *Server) listOffsets(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	offs, err := s.b.CommittedOffsets(r.Context(), g, r.URL.Query().Get("topic"))
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	out := api.OffsetsResponse{Offsets: []api.CommittedOffset{}}
	for _, o := range offs {
		if s.visible(r, auth.Topic, o.Topic) { // a group's view never shows topics the caller may not read
			out.Offsets = append(out.Offsets, api.CommittedOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Metadata: o.Metadata, CommittedMs: o.CommittedMs})
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) resetOffsets(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	var in api.ResetRequest
	if p := s.decodeBody(w, r, &in); p != nil {
		s.problem(w, r, p)
		return
	}
	if err := offsets.ValidateTopicName(in.Topic); err != nil {
		s.problem(w, r, fieldProblem("topic", "%q is not a topic name", in.Topic))
		return
	}
	if !s.may(w, r, auth.Read, auth.Topic, in.Topic) {
		return
	}
	var value int64
	switch in.To {
	case "timestamp":
		if in.Timestamp == nil || *in.Timestamp < 0 {
			s.problem(w, r, fieldProblem("timestamp", "to=timestamp needs a non-negative timestamp (epoch ms)"))
			return
		}
		value = *in.Timestamp
	case "offset":
		if in.Offset == nil || *in.Offset < 0 {
			s.problem(w, r, fieldProblem("offset", "to=offset needs a non-negative offset"))
			return
		}
		value = *in.Offset
	case "earliest", "latest":
	default:
		s.problem(w, r, fieldProblem("to", "%q: use earliest, latest, timestamp or offset", in.To))
		return
	}
	if _, err := s.b.ResetOffsets(r.Context(), g, in.Topic, in.Partitions, in.To, value); err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.listOffsets(w, r)
}

func (s *Server) groupLag(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	lags, err := s.b.GroupLag(r.Context(), g)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	out := api.LagResponse{Group: g, Partitions: []api.PartitionLag{}}
	for _, l := range lags {
		if !s.visible(r, auth.Topic, l.Topic) {
			continue
		}
		out.Partitions = append(out.Partitions, api.PartitionLag{Topic: l.Topic, Partition: l.Partition, CommittedOffset: l.Committed, LogStartOffset: l.LogStart, LogEndOffset: l.LogEnd, Lag: l.Lag,
			MemberID: s.memberIDFor(r, l.MemberID, l.MemberPrincipal), TimeLagMs: l.TimeLagMs})
		out.TotalLag += l.Lag
		out.MaxLag = max(out.MaxLag, l.Lag)
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := s.pageLimit(w, r)
	if !ok {
		return
	}
	names, next, err := s.b.ListGroups(r.Context(), q.Get("after"), limit)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	shown := []string{}
	for _, n := range names {
		if s.visible(r, auth.Group, n) {
			shown = append(shown, n)
		}
	}
	s.writeJSON(w, http.StatusOK, api.GroupList{Groups: shown, Next: next})
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	info, err := s.b.DescribeGroup(r.Context(), g)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	out := api.Group{Group: g, State: info.State, GroupEpoch: info.Epoch, AssignmentEpoch: info.AssignmentEpoch, Assignor: info.Assignor, Members: []api.GroupMember{}}
	for _, m := range info.Members {
		topics := []string{}
		for _, t := range m.Topics {
			if s.visible(r, auth.Topic, t) {
				topics = append(topics, t)
			}
		}
		gm := api.GroupMember{
			MemberID: s.memberIDFor(r, m.ID, m.Principal), MemberEpoch: m.Epoch, Topics: topics, Assignment: s.visibleTPs(r, m.Assignment),
			Target: s.visibleTPs(r, m.Target), SessionTimeoutMs: m.SessionTimeoutMs, ClientID: m.ClientID,
		}
		if gm.MemberID == hiddenMember {
			gm.ClientID = ""
		}
		out.Members = append(out.Members, gm)
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if err := s.b.DeleteGroup(r.Context(), g); err != nil {
		s.fail(w, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// mayTopics checks op on each topic named in a body.
func (s *Server) mayTopics(w http.ResponseWriter, r *http.Request, op auth.Op, topics []string) bool {
	for _, t := range topics {
		if !s.may(w, r, op, auth.Topic, t) {
			return false
		}
	}
	return true
}

func commitTopics(in []api.OffsetCommit) []string {
	var out []string
	for _, o := range in {
		out = append(out, o.Topic)
	}
	return out
}

// hiddenMember stands for the id of another principal's member in group
// views: it is what would let one principal act as another's member.
const hiddenMember = "(another principal's member)"

// memberIDFor shows a member id to the principal that owns the member
// (and to everyone without authentication).
func (s *Server) memberIDFor(r *http.Request, id, owner string) string {
	if s.opts.Auth == nil || id == "" || owner == principal(r) {
		return id
	}
	return hiddenMember
}

// visibleTPs keeps the topics the caller may read.
func (s *Server) visibleTPs(r *http.Request, in []offsets.TopicPartitions) []api.TopicPartitions {
	out := []api.TopicPartitions{}
	for _, t := range in {
		if s.visible(r, auth.Topic, t.Topic) {
			out = append(out, api.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	return out
}

// topicAuthorizer returns a check of op on a topic for the caller (nil
// without authentication).
func (s *Server) topicAuthorizer(r *http.Request, op auth.Op) func(string) error {
	if s.opts.Auth == nil {
		return nil
	}
	id, _ := r.Context().Value(identityKey{}).(auth.Identity)
	return func(topic string) error {
		if s.opts.Auth.Allowed(id, op, auth.Topic, topic) {
			return nil
		}
		return &forbiddenError{principal: id.Principal, op: op, topic: topic}
	}
}

// forbiddenError is a 403 found inside the broker.
type forbiddenError struct {
	principal string
	op        auth.Op
	topic     string
}

func (e *forbiddenError) Error() string {
	return fmt.Sprintf("principal %s may not %s on topic %s", e.principal, e.op, e.topic)
}
