package offsets

import (
	"testing"
)

// FuzzDecodeItem feeds arbitrary stored bytes to every item decoder: they
// may refuse them, never panic, and whatever they accept is valid.
func FuzzDecodeItem(f *testing.F) {
	f.Add(encode(&Head{LogEnd: 5, Bytes: 100, FenceToken: "t"}))
	f.Add(encode(&IndexEntry{Base: 1, Last: 3, Records: 3, Object: "o", Length: 9}))
	f.Add(encode(&ProducerState{Epoch: 1, LastSeq: 4, Batches: []ProducerBatch{{0, 4, 0, 4}}}))
	f.Add(encode(&Topic{Name: "t", ID: "x", Partitions: 2, Config: DefaultTopicConfig()}))
	f.Add(encode(&Member{ID: "m", SessionTimeoutMs: 1, Owned: []TopicPartitions{{Topic: "t", Partitions: []int32{1}}}}))
	f.Add(encode(&GroupMeta{Epoch: 2, AssignmentEpoch: 1, Members: 3, Assignment: AssignmentRef{Tag: "x", Chunks: 1}}))
	f.Add(encode(&AssignmentChunk{Epoch: 1, Targets: map[string][]TopicPartitions{"m": {{Topic: "t", Partitions: []int32{0}}}}}))
	f.Add(encode(&IdemRecord{Digest: "d", Partitions: 2, Done: []IdemPart{{Partition: 1, Base: 3, Last: 4}}}))
	f.Add([]byte(`{"f":1,"d":{"log_end":-1}}`))
	f.Add([]byte(`{"f":2,"d":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		it := Item{Key: Key{"p", "s"}, Version: 1, Value: b}
		targets := []validator{&Head{}, &Ctl{}, &IndexEntry{}, &ProducerState{}, &ObjectRef{}, &GCEntry{}, &Topic{}, &DeletedTopic{}, &GroupMeta{}, &Member{}, &PartitionOwner{}, &AssignmentChunk{}, &IdemRecord{}, &CommittedOffset{}, &counter{}, &groupDir{}, &stateValue{}}
		for _, v := range targets {
			if err := decode(it, v); err == nil {
				if err := v.validate(); err != nil {
					t.Fatalf("%T accepted but invalid: %v", v, err)
				}
			}
		}
	})
}
