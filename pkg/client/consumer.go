package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/streambed/streambed/pkg/api"
)

// Consumer is a member of a consumer group: the server assigns it
// partitions (KIP-848 style), Poll returns their records, and positions are
// committed (automatically, by the next Poll, unless turned off), so a
// crash redelivers at most the last poll's records. Use it from one
// goroutine; a background heartbeat keeps the session alive between polls.
type Consumer struct {
	c      *Client
	group  string
	topics []string
	cfg    consumerConfig

	mu        sync.Mutex // guards everything below
	memberID  string
	epoch     int32
	interval  time.Duration
	assigned  []TopicPartition // what this member consumes now
	pending   []TopicPartition // a newer assignment from a background heartbeat
	positions map[TopicPartition]int64
	// committed is what this consumer last committed successfully: a
	// Poll whose positions all match it commits nothing, so an idle
	// member's polls write nothing.
	committed map[TopicPartition]int64
	lastCall  time.Time
	closed    bool
	stop      chan struct{}
	hbDone    chan struct{}
}

type consumerConfig struct {
	sessionTimeout time.Duration
	assignor       string
	autoCommit     bool
	reset          string
	maxRecords     int
	wait           time.Duration
	memberID       string
	onAssigned     func(context.Context, []TopicPartition)
	onRevoked      func(context.Context, []TopicPartition)
	onCommitError  func(error)
}

// ConsumerOption configures a Consumer.
type ConsumerOption func(*consumerConfig) error

// WithSessionTimeout sets how long the group waits for a silent member
// before reassigning its partitions (default 45 s).
func WithSessionTimeout(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) error {
		if d < time.Second || d > 30*time.Minute {
			return errors.New("client: session timeout must be between 1 s and 30 min")
		}
		c.sessionTimeout = d
		return nil
	}
}

// WithAssignor picks the group's assignor when this member creates it:
// "uniform" (default) or "range".
func WithAssignor(name string) ConsumerOption {
	return func(c *consumerConfig) error {
		if name != "uniform" && name != "range" {
			return fmt.Errorf("client: assignor %q: use uniform or range", name)
		}
		c.assignor = name
		return nil
	}
}

// WithAutoCommit turns automatic commits (by each Poll, of the positions
// the previous Poll reached) on (default) or off (call Commit).
func WithAutoCommit(on bool) ConsumerOption {
	return func(c *consumerConfig) error { c.autoCommit = on; return nil }
}

// WithAutoOffsetReset sets where a partition without a committed offset
// starts: "latest" (default, as Kafka) or "earliest".
func WithAutoOffsetReset(where string) ConsumerOption {
	return func(c *consumerConfig) error {
		if where != "earliest" && where != "latest" {
			return fmt.Errorf("client: auto offset reset %q: use earliest or latest", where)
		}
		c.reset = where
		return nil
	}
}

// WithMaxPollRecords bounds the records one Poll returns (default 500).
func WithMaxPollRecords(n int) ConsumerOption {
	return func(c *consumerConfig) error {
		if n < 1 || n > 10000 {
			return errors.New("client: max poll records must be between 1 and 10000")
		}
		c.maxRecords = n
		return nil
	}
}

// WithPollWait sets how long a Poll waits for records when there are none
// (capped by the heartbeat interval; default 1 s).
func WithPollWait(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) error {
		if d < 0 {
			return errors.New("client: negative poll wait")
		}
		c.wait = d
		return nil
	}
}

// WithMemberID sets the member id (default: random).
func WithMemberID(id string) ConsumerOption {
	return func(c *consumerConfig) error { c.memberID = id; return nil }
}

// WithRebalanceListener is told of partitions assigned to and revoked from
// this member. onRevoked runs before the member releases them, so it can
// commit; with auto-commit the positions are committed anyway.
func WithRebalanceListener(onAssigned, onRevoked func(context.Context, []TopicPartition)) ConsumerOption {
	return func(c *consumerConfig) error { c.onAssigned, c.onRevoked = onAssigned, onRevoked; return nil }
}

// WithCommitErrorCallback is told when an automatic commit failed. The
// positions are committed again by the next Poll, so this is for logging
// and metrics; Poll itself still returns its records without an error (as
// Kafka's poll does with auto-commit).
func WithCommitErrorCallback(fn func(error)) ConsumerOption {
	return func(c *consumerConfig) error { c.onCommitError = fn; return nil }
}

// NewConsumer joins group subscribed to topics (joining happens on the
// first Poll).
func (c *Client) NewConsumer(group string, topics []string, opts ...ConsumerOption) (*Consumer, error) {
	if group == "" || len(topics) == 0 {
		return nil, errors.New("client: a consumer needs a group and at least one topic")
	}
	cfg := consumerConfig{sessionTimeout: 45 * time.Second, autoCommit: true, reset: "latest", maxRecords: 500, wait: time.Second}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	id := cfg.memberID
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = "go-" + hex.EncodeToString(b[:])
	}
	cs := &Consumer{c: c, group: group, topics: slices.Clone(topics), cfg: cfg, memberID: id, positions: map[TopicPartition]int64{}, committed: map[TopicPartition]int64{}, stop: make(chan struct{}), hbDone: make(chan struct{})}
	go cs.heartbeatLoop()
	return cs, nil
}

// MemberID is this member's id.
func (cs *Consumer) MemberID() string { return cs.memberID }

// Assignment is the partitions this member consumes now.
func (cs *Consumer) Assignment() []TopicPartition {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return slices.Clone(cs.assigned)
}

// Position returns the next offset this member will read from tp.
func (cs *Consumer) Position(tp TopicPartition) (int64, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	off, ok := cs.positions[tp]
	return off, ok
}

// Seek makes the next Poll read tp from offset.
func (cs *Consumer) Seek(tp TopicPartition, offset int64) {
	cs.mu.Lock()
	cs.positions[tp] = offset
	cs.mu.Unlock()
}

// SeekToTime makes the next Poll read tp from the first record at or after t.
func (cs *Consumer) SeekToTime(ctx context.Context, tp TopicPartition, t time.Time) error {
	off, err := cs.c.OffsetForTime(ctx, tp.Topic, tp.Partition, t)
	if err != nil {
		return err
	}
	cs.Seek(tp, off)
	return nil
}

func toTPs(in []api.TopicPartitions) []TopicPartition {
	var out []TopicPartition
	for _, t := range in {
		for _, p := range t.Partitions {
			out = append(out, TopicPartition{t.Topic, p})
		}
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

func fromTPs(in []TopicPartition) []api.TopicPartitions {
	out := []api.TopicPartitions{}
	for _, tp := range in {
		if n := len(out); n > 0 && out[n-1].Topic == tp.Topic {
			out[n-1].Partitions = append(out[n-1].Partitions, tp.Partition)
			continue
		}
		out = append(out, api.TopicPartitions{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
	}
	return out
}

func minus(a, b []TopicPartition) []TopicPartition {
	var out []TopicPartition
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

type pollResponse struct {
	api.HeartbeatResponse
	Records     []wireRecord       `json:"records"`
	Offsets     []api.OffsetCommit `json:"offsets"`
	CommitError *api.ErrorRef      `json:"commit_error"`
}

// Poll heartbeats, commits the positions the previous Poll reached (with
// auto-commit), and returns records of the assigned partitions. Rebalance
// callbacks run inside Poll.
func (cs *Consumer) Poll(ctx context.Context) ([]Record, error) {
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return nil, errors.New("client: consumer closed")
	}
	// Adopt an assignment a background heartbeat received.
	before := cs.assigned
	next := before
	if cs.pending != nil {
		next, cs.pending = cs.pending, nil
	}
	revoked := minus(before, next)
	cs.mu.Unlock()
	if len(revoked) > 0 && cs.cfg.onRevoked != nil {
		cs.cfg.onRevoked(ctx, revoked)
	}
	cs.mu.Lock()
	req := api.PollRequest{
		HeartbeatRequest: api.HeartbeatRequest{MemberID: cs.memberID, MemberEpoch: cs.epoch, Topics: cs.topics, SessionTimeoutMs: cs.cfg.sessionTimeout.Milliseconds(), Assignor: cs.cfg.assignor},
		AutoOffsetReset:  cs.cfg.reset,
		MaxRecords:       &cs.cfg.maxRecords,
	}
	if cs.epoch > 0 {
		req.Owned = fromTPs(next)
	}
	changed := false
	for tp, off := range cs.positions {
		// Positions of every owned partition, revoked ones included: they are
		// committed before the member releases them.
		if slices.Contains(cs.assigned, tp) || slices.Contains(next, tp) {
			req.Offsets = append(req.Offsets, api.OffsetCommit{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
			if c, ok := cs.committed[tp]; !ok || c != off {
				changed = true
			}
		}
	}
	commit := cs.cfg.autoCommit && changed
	req.Commit = &commit
	wait := cs.cfg.wait.Milliseconds()
	req.WaitMs = &wait
	cs.lastCall = time.Now()
	cs.mu.Unlock()

	var resp pollResponse
	err := cs.c.do(ctx, call{method: "POST", path: "/v1/groups/" + esc(cs.group) + "/poll", body: req}, &resp)
	if err != nil {
		if code := Code(err); code == api.CodeUnknownMember || code == api.CodeStaleMemberEpoch {
			cs.rejoin(ctx)
		}
		return nil, err
	}
	cs.mu.Lock()
	if commit && resp.CommitError == nil {
		for _, o := range req.Offsets {
			cs.committed[TopicPartition{o.Topic, o.Partition}] = o.Offset
		}
	}
	after := toTPs(resp.Assignment)
	cs.epoch = resp.MemberEpoch
	cs.interval = time.Duration(resp.HeartbeatIntervalMs) * time.Millisecond
	cs.assigned = after
	for _, tp := range minus(before, after) {
		delete(cs.positions, tp)
		delete(cs.committed, tp)
	}
	for _, o := range resp.Offsets {
		cs.positions[TopicPartition{o.Topic, o.Partition}] = o.Offset
	}
	added := minus(after, before)
	lost := minus(minus(before, after), revoked) // taken away without notice
	cs.mu.Unlock()
	if len(lost) > 0 && cs.cfg.onRevoked != nil {
		cs.cfg.onRevoked(ctx, lost)
	}
	if len(added) > 0 && cs.cfg.onAssigned != nil {
		cs.cfg.onAssigned(ctx, added)
	}
	out := make([]Record, 0, len(resp.Records))
	for i := range resp.Records {
		w := &resp.Records[i]
		r, err := fromWire(w.Topic, 0, &w.Record)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	if resp.CommitError != nil && cs.cfg.onCommitError != nil {
		// Not an error of Poll: its records are delivered and its
		// positions kept; the next Poll commits them again. Returning
		// records with an error invites callers to drop them while the
		// positions move past them.
		cs.cfg.onCommitError(fmt.Errorf("client: committing positions: %s: %s", resp.CommitError.Code, resp.CommitError.Message))
	}
	return out, nil
}

// rejoin starts over after the member was fenced or expired: its
// partitions are lost (Kafka's onPartitionsLost), their positions dropped.
func (cs *Consumer) rejoin(ctx context.Context) {
	cs.mu.Lock()
	lost := cs.assigned
	cs.epoch, cs.assigned, cs.pending = 0, nil, nil
	clear(cs.positions)
	clear(cs.committed)
	cs.mu.Unlock()
	if len(lost) > 0 && cs.cfg.onRevoked != nil {
		cs.cfg.onRevoked(ctx, lost)
	}
}

// Commit commits the positions the last Poll reached (for manual commits).
func (cs *Consumer) Commit(ctx context.Context) error {
	cs.mu.Lock()
	offs := make([]api.OffsetCommit, 0, len(cs.positions))
	for _, tp := range slices.SortedFunc(maps.Keys(cs.positions), func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	}) {
		if c, ok := cs.committed[tp]; slices.Contains(cs.assigned, tp) && (!ok || c != cs.positions[tp]) {
			offs = append(offs, api.OffsetCommit{Topic: tp.Topic, Partition: tp.Partition, Offset: cs.positions[tp]})
		}
	}
	req := api.CommitRequest{MemberID: cs.memberID, MemberEpoch: cs.epoch, Offsets: offs}
	cs.mu.Unlock()
	if len(offs) == 0 {
		return nil // nothing moved since the last commit
	}
	if err := cs.c.do(ctx, call{method: "POST", path: "/v1/groups/" + esc(cs.group) + "/offsets", body: req, idempotent: true}, nil); err != nil {
		return err
	}
	cs.mu.Lock()
	for _, o := range offs {
		cs.committed[TopicPartition{o.Topic, o.Partition}] = o.Offset
	}
	cs.mu.Unlock()
	return nil
}

// heartbeatLoop keeps the session alive while the application is busy
// between polls. It never releases partitions (owned: null) and leaves any
// new assignment for the next Poll to adopt.
func (cs *Consumer) heartbeatLoop() {
	defer close(cs.hbDone)
	for {
		cs.mu.Lock()
		interval := cs.interval
		since := time.Since(cs.lastCall)
		epoch := cs.epoch
		cs.mu.Unlock()
		if interval == 0 {
			interval = time.Second
		}
		wait := interval - since
		if epoch > 0 && wait <= 0 {
			cs.backgroundHeartbeat()
			wait = interval
		}
		select {
		case <-cs.stop:
			return
		case <-time.After(max(wait, 10*time.Millisecond)):
		}
	}
}

func (cs *Consumer) backgroundHeartbeat() {
	cs.mu.Lock()
	req := api.HeartbeatRequest{MemberID: cs.memberID, MemberEpoch: cs.epoch}
	cs.lastCall = time.Now()
	cs.mu.Unlock()
	var resp api.HeartbeatResponse
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cs.c.do(ctx, call{method: "POST", path: "/v1/groups/" + esc(cs.group) + "/heartbeat", body: req}, &resp); err != nil {
		return // the next Poll sees (and handles) the same error
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if req.MemberEpoch == cs.epoch {
		cs.epoch = resp.MemberEpoch
		if assigned := toTPs(resp.Assignment); !slices.Equal(assigned, cs.assigned) {
			cs.pending = assigned
		}
	}
}

// Close commits (with auto-commit) and leaves the group, so its partitions
// move to other members at once.
func (cs *Consumer) Close(ctx context.Context) error {
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return nil
	}
	cs.closed = true
	close(cs.stop)
	joined := cs.epoch > 0
	cs.mu.Unlock()
	<-cs.hbDone
	var err error
	if joined && cs.cfg.autoCommit {
		err = cs.Commit(ctx)
	}
	leave := api.HeartbeatRequest{MemberID: cs.memberID, MemberEpoch: -1}
	if lerr := cs.c.do(ctx, call{method: "POST", path: "/v1/groups/" + esc(cs.group) + "/heartbeat", body: leave, idempotent: true}, nil); lerr != nil && err == nil {
		err = lerr
	}
	return err
}
