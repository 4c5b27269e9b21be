package api

// TopicPartitions names partitions of one topic.
type TopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// HeartbeatRequest is POST /v1/groups/{g}/heartbeat: member_epoch 0
// joins, the current epoch heartbeats, -1 leaves. Owned (what the member
// consumes now) is null to leave it as it was; [] means nothing.
type HeartbeatRequest struct {
	MemberID         string            `json:"member_id,omitempty"`
	MemberEpoch      int32             `json:"member_epoch"`
	Topics           []string          `json:"topics,omitempty"`
	Owned            []TopicPartitions `json:"owned"`
	SessionTimeoutMs int64             `json:"session_timeout_ms,omitempty"`
	Assignor         string            `json:"assignor,omitempty"`
	ClientID         string            `json:"client_id,omitempty"`
}

// HeartbeatResponse tells a member what to own now.
type HeartbeatResponse struct {
	MemberID            string            `json:"member_id"`
	MemberEpoch         int32             `json:"member_epoch"`
	HeartbeatIntervalMs int64             `json:"heartbeat_interval_ms"`
	Assignment          []TopicPartitions `json:"assignment"`
}

// OffsetCommit is one partition's committed position (the next offset to
// consume).
type OffsetCommit struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Metadata  string `json:"metadata,omitempty"`
}

// CommitRequest is POST /v1/groups/{g}/offsets. Without member_id it is a
// standalone commit, allowed only for a group without live members.
type CommitRequest struct {
	MemberID    string         `json:"member_id,omitempty"`
	MemberEpoch int32          `json:"member_epoch,omitempty"`
	Offsets     []OffsetCommit `json:"offsets"`
}

// CommittedOffset is a stored commit.
type CommittedOffset struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	Metadata    string `json:"metadata,omitempty"`
	CommittedMs int64  `json:"committed_ms"`
}

// OffsetsResponse lists a group's committed offsets.
type OffsetsResponse struct {
	Offsets []CommittedOffset `json:"offsets"`
}

// ResetRequest is POST /v1/groups/{g}/offsets/reset (empty groups only).
type ResetRequest struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions,omitempty"`
	To         string  `json:"to"` // earliest, latest, timestamp, offset
	Timestamp  *int64  `json:"timestamp,omitempty"`
	Offset     *int64  `json:"offset,omitempty"`
}

// PollRequest is POST /v1/groups/{g}/poll: a heartbeat, a commit of the
// previous positions (unless commit is false) and a fetch from the
// assigned partitions, in one round trip.
type PollRequest struct {
	HeartbeatRequest
	Offsets         []OffsetCommit `json:"offsets,omitempty"`
	Commit          *bool          `json:"commit,omitempty"`
	AutoOffsetReset string         `json:"auto_offset_reset,omitempty"`
	MaxRecords      *int           `json:"max_records,omitempty"`
	MaxBytes        *int           `json:"max_bytes,omitempty"`
	WaitMs          *int64         `json:"wait_ms,omitempty"`
	Format          string         `json:"format,omitempty"`
}

// PollResponse answers a poll. Records carry topic and partition; Offsets
// are the next positions of every assigned partition, to send back (and
// so commit) with the next poll.
type PollResponse struct {
	HeartbeatResponse
	Records     []Record       `json:"records"`
	Offsets     []OffsetCommit `json:"offsets"`
	CommitError *ErrorRef      `json:"commit_error,omitempty"`
}

// PartitionLag is a group's lag on one partition.
type PartitionLag struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset *int64 `json:"committed_offset"`
	LogStartOffset  int64  `json:"log_start_offset"`
	LogEndOffset    int64  `json:"log_end_offset"`
	Lag             int64  `json:"lag"`
	MemberID        string `json:"member_id,omitempty"`
	TimeLagMs       int64  `json:"time_lag_ms"`
}

// LagResponse is GET /v1/groups/{g}/lag.
type LagResponse struct {
	Group      string         `json:"group"`
	TotalLag   int64          `json:"total_lag"`
	MaxLag     int64          `json:"max_lag"`
	Partitions []PartitionLag `json:"partitions"`
}

// GroupMember describes a live member.
type GroupMember struct {
	MemberID         string            `json:"member_id"`
	MemberEpoch      int32             `json:"member_epoch"`
	Topics           []string          `json:"topics"`
	Assignment       []TopicPartitions `json:"assignment"`
	Target           []TopicPartitions `json:"target"`
	SessionTimeoutMs int32             `json:"session_timeout_ms"`
	ClientID         string            `json:"client_id,omitempty"`
}

// Group is GET /v1/groups/{g}.
type Group struct {
	Group           string        `json:"group"`
	State           string        `json:"state"`
	GroupEpoch      int32         `json:"group_epoch"`
	AssignmentEpoch int32         `json:"assignment_epoch"`
	Assignor        string        `json:"assignor"`
	Members         []GroupMember `json:"members"`
}

// GroupList is GET /v1/groups.
type GroupList struct {
	Groups []string `json:"groups"`
	Next   string   `json:"next,omitempty"`
}
