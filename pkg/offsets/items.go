package offsets

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Item layout (docs/metadata.md is the reference). Sort keys are printable
// ASCII below '~' so Prefix ranges work; numbers are zero-padded to sort.
//
//	topics          / t#{name}                 Topic
//	tdel            / {topicID}                DeletedTopic (cleanup queue)
//	p#{id}#{part}   / head                     Head: log end, producer-side state
//	p#{id}#{part}   / ctl                      Ctl: log start, compactor lease
//	p#{id}#{part}   / seg#{last:020}           IndexEntry
//	p#{id}#{part}   / pid#{producer:020}       ProducerState (TTL)
//	o#{objectKey}   / ref                      ObjectRef
//	gc              / {deleteAfter:020}#{key}  GCEntry (objects to delete)
//	seq             / producer-ids             Counter
//	groups          / g#{group}                group directory entry
//	g#{group}       / meta                     GroupMeta
//	g#{group}       / m#{member}               Member (TTL)
//	g#{group}       / o#{topic}#{part:010}     PartitionOwner
//	g#{group}       / a#{tag}#{chunk:04}       AssignmentChunk
//	g#{group}       / c#{topic}#{part:010}     CommittedOffset
//	i#{hmac}        / idem                     IdemRecord (TTL)
//	state           / s#{name}                 State (compactor cursors, idempotency secret)
const (
	pkTopics   = "topics"
	pkDeleted  = "tdel"
	pkGC       = "gc"
	pkSeq      = "seq"
	pkGroups   = "groups"
	skHead     = "head"
	skCtl      = "ctl"
	skRef      = "ref"
	skMeta     = "meta"
	segPrefix  = "seg#"
	pidPrefix  = "pid#"
	membPrefix = "m#"
	commPrefix = "c#"
	// itemFormat is the version of the JSON encoding of every item value.
	itemFormat = 1
)

func topicKey(name string) Key { return Key{pkTopics, "t#" + name} }
func partPK(topicID string, p int32) string {
	return "p#" + topicID + "#" + strconv.FormatInt(int64(p), 10)
}
func headKey(topicID string, p int32) Key { return Key{partPK(topicID, p), skHead} }
func ctlKey(topicID string, p int32) Key  { return Key{partPK(topicID, p), skCtl} }
func segKey(topicID string, p int32, last int64) Key {
	return Key{partPK(topicID, p), segSK(last)}
}
func segSK(last int64) string { return fmt.Sprintf("%s%020d", segPrefix, last) }
func producerKey(topicID string, p int32, id int64) Key {
	return Key{partPK(topicID, p), fmt.Sprintf("%s%020d", pidPrefix, id)}
}
func refKey(object string) Key { return Key{"o#" + object, skRef} }
func gcKey(deleteAfterMs int64, object string) Key {
	return Key{pkGC, fmt.Sprintf("%020d#%s", deleteAfterMs, object)}
}
func groupDirKey(g string) Key { return Key{pkGroups, "g#" + g} }
func groupPK(g string) string  { return "g#" + g }
func memberKey(g, member string) Key {
	return Key{groupPK(g), membPrefix + member}
}
func commitKey(g, topic string, p int32) Key {
	return Key{groupPK(g), fmt.Sprintf("%s%s#%010d", commPrefix, topic, p)}
}

// envelope versions every stored value, so a later build can migrate.
type envelope struct {
	F int             `json:"f"`
	D json.RawMessage `json:"d"`
}

func encode(v any) []byte {
	d, err := json.Marshal(v)
	if err != nil {
		// Only plain structs are encoded here; failure is a programming error.
		panic(fmt.Sprintf("offsets: encode %T: %v", v, err))
	}
	b, _ := json.Marshal(envelope{F: itemFormat, D: d})
	return b
}

// validator is implemented by item types that check their own invariants
// after decoding, so corrupt or hostile stored bytes never reach logic.
type validator interface{ validate() error }

// decode decodes a stored value into v (a pointer to an item type).
func decode(it Item, v validator) error {
	var env envelope
	if err := json.Unmarshal(it.Value, &env); err != nil {
		return fmt.Errorf("offsets: corrupt item %s: %w", it.Key, err)
	}
	if env.F != itemFormat {
		return fmt.Errorf("offsets: item %s has format %d, this build reads %d", it.Key, env.F, itemFormat)
	}
	if err := json.Unmarshal(env.D, v); err != nil {
		return fmt.Errorf("offsets: corrupt item %s: %w", it.Key, err)
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("offsets: corrupt item %s: %w", it.Key, err)
	}
	return nil
}

// Head is the producer-side state of a partition: everything a produce
// commit reads and conditions on.
type Head struct {
	LogEnd       int64  `json:"log_end"`
	Bytes        int64  `json:"bytes"` // bytes ever appended
	LastAppendMs int64  `json:"last_append_ms,omitempty"`
	MaxTimestamp int64  `json:"max_ts,omitempty"`
	FenceToken   string `json:"fence,omitempty"`
	Deleted      bool   `json:"deleted,omitempty"`
	// Partitions is the topic's partition count as of its last increase
	// (0 if it never grew): commits of records partitioned by key with a
	// smaller count are refused (ErrStalePartitionCount).
	Partitions int32 `json:"parts,omitempty"`
	// Tail is the index entry of the last append, so a reader that reads
	// the head (every fetch does) finds the newest records without
	// querying the index. It may since have been merged away: readers
	// trust it for half the GC grace period after it was created, while
	// its object is certainly still stored.
	Tail *IndexEntry `json:"tail,omitempty"`
}

func (h *Head) validate() error {
	if h.LogEnd < 0 || h.Bytes < 0 {
		return fmt.Errorf("negative log end %d or bytes %d", h.LogEnd, h.Bytes)
	}
	if h.Tail != nil {
		if err := h.Tail.validate(); err != nil || h.Tail.Last >= h.LogEnd {
			return fmt.Errorf("tail entry %+v does not end within the log end %d", *h.Tail, h.LogEnd)
		}
	}
	return nil
}

// Ctl is the compactor-side state of a partition, kept apart from Head so
// that retention and merges never contend with produce commits.
type Ctl struct {
	LogStart       int64  `json:"log_start"`
	BytesRemoved   int64  `json:"bytes_removed"`
	LeaseOwner     string `json:"lease_owner,omitempty"`
	LeaseEpoch     int64  `json:"lease_epoch,omitempty"`
	LeaseExpiresMs int64  `json:"lease_expires_ms,omitempty"`
	// Cursor lets a compactor resume bounded work where it stopped.
	Cursor string `json:"cursor,omitempty"`
}

func (c *Ctl) validate() error {
	if c.LogStart < 0 || c.BytesRemoved < 0 || c.LeaseEpoch < 0 {
		return fmt.Errorf("negative log start %d, bytes removed %d or lease epoch %d", c.LogStart, c.BytesRemoved, c.LeaseEpoch)
	}
	return nil
}

// IndexEntry maps a run of offsets to the byte range of a segment object
// holding them. Entries of a partition tile [log start, log end).
type IndexEntry struct {
	Base      int64  `json:"base"`
	Last      int64  `json:"last"`
	Records   int64  `json:"records"`
	Object    string `json:"object"`
	Offset    int64  `json:"off"`
	Length    int64  `json:"len"`
	MinTs     int64  `json:"min_ts"`
	MaxTs     int64  `json:"max_ts"`
	Level     int    `json:"level,omitempty"` // 0: L0 object of a produce; 1+: compacted
	CreatedMs int64  `json:"created_ms,omitempty"`
	// Points is the slice's sparse batch index, copied from the object's
	// footer so a read can start near the offset it wants without reading
	// the footer. Omitted when the slice has just the point at its start
	// (every L0 slice of one batch, and entries written before points).
	Points []Point `json:"pts,omitempty"`
	// Version is the item version, for conditional replacement.
	Version int64 `json:"-"`
}

// Point is a batch of an entry's slice where a read can start: its base
// offset and byte position relative to the entry's Base and Offset, and
// the largest timestamp from it up to the next point (-1: none). Stored
// as a three-number array to keep index items small.
type Point struct {
	Delta, Pos, MaxTs int64
}

func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]int64{p.Delta, p.Pos, p.MaxTs})
}

func (p *Point) UnmarshalJSON(b []byte) error {
	var a [3]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	p.Delta, p.Pos, p.MaxTs = a[0], a[1], a[2]
	return nil
}

// Span is how many offsets the entry covers.
func (e *IndexEntry) Span() int64 { return e.Last - e.Base + 1 }

// StartPoints returns the entry's points, or the one at its start that an
// entry without points implies.
func (e *IndexEntry) StartPoints() []Point {
	if len(e.Points) > 0 {
		return e.Points
	}
	return []Point{{Delta: 0, Pos: 0, MaxTs: e.MaxTs}}
}

func (e *IndexEntry) validate() error {
	if e.Base < 0 || e.Last < e.Base || e.Records < 0 || e.Records > e.Span() || e.Offset < 0 || e.Length < 0 || e.Object == "" {
		return fmt.Errorf("inconsistent index entry %+v", *e)
	}
	for i, p := range e.Points {
		first := i == 0 && (p.Delta != 0 || p.Pos != 0)
		if first || p.Pos < 0 || p.Pos >= max(e.Length, 1) || p.Delta < 0 || p.Delta > e.Span() || (i > 0 && (p.Pos <= e.Points[i-1].Pos || p.Delta < e.Points[i-1].Delta)) {
			return fmt.Errorf("index entry %d-%d: point %d %+v is not an ascending position inside the slice", e.Base, e.Last, i, p)
		}
	}
	return nil
}

// ProducerBatch remembers one of a producer's recent batches, so that a
// retried batch gets its original offsets back.
type ProducerBatch struct {
	FirstSeq int32 `json:"first_seq"`
	LastSeq  int32 `json:"last_seq"`
	Base     int64 `json:"base"`
	Last     int64 `json:"last"`
}

// ProducerState is an idempotent producer's state on one partition.
type ProducerState struct {
	Epoch     int16           `json:"epoch"`
	LastSeq   int32           `json:"last_seq"`
	Batches   []ProducerBatch `json:"batches"` // oldest first, at most MaxProducerBatches
	UpdatedMs int64           `json:"updated_ms"`
}

// MaxProducerBatches is how many recent batches per producer and partition
// are remembered for duplicate detection (Kafka keeps 5).
const MaxProducerBatches = 5

func (s *ProducerState) validate() error {
	if s.Epoch < 0 || len(s.Batches) > MaxProducerBatches {
		return fmt.Errorf("producer state epoch %d with %d batches", s.Epoch, len(s.Batches))
	}
	return nil
}

// ObjectRef counts the index entries that point at an object. When the
// count reaches zero the object is queued for deletion after a grace period.
type ObjectRef struct {
	Refs          int64 `json:"refs"`
	Size          int64 `json:"size"`
	CreatedMs     int64 `json:"created_ms"`
	DeleteAfterMs int64 `json:"delete_after_ms,omitempty"`
}

func (r *ObjectRef) validate() error {
	if r.Refs < 0 || r.Size < 0 {
		return fmt.Errorf("object ref count %d size %d", r.Refs, r.Size)
	}
	return nil
}

// GCEntry is an object whose references reached zero.
type GCEntry struct {
	Object        string `json:"object"`
	Size          int64  `json:"size"`
	DeleteAfterMs int64  `json:"delete_after_ms"`
	Version       int64  `json:"-"`
}

func (g *GCEntry) validate() error {
	if g.Object == "" {
		return fmt.Errorf("gc entry without object")
	}
	return nil
}

// counter is a monotonically increasing allocator.
type counter struct {
	Next int64 `json:"next"`
}

func (c *counter) validate() error {
	if c.Next < 0 {
		return fmt.Errorf("negative counter %d", c.Next)
	}
	return nil
}
