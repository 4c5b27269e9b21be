package dynamolike_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/dynamolike"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/offsets/offsetstest"
)

// suiteConfig is what the acceptance suite runs under: torn multi-item
// reads and conflicting overlapping writes, as on DynamoDB. (Writes
// answered ambiguously are exercised by the commit-path tests and the
// consistency harness, which can tell an unknown outcome from a wrong one.)
func suiteConfig(seed uint64) dynamolike.Config {
	return dynamolike.Config{Seed: seed, TornReads: true, MaxInFlight: 200 * time.Microsecond}
}

func TestAcceptanceOverMemtable(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	offsetstest.Run(t, func(t *testing.T) offsets.Table {
		w := dynamolike.New(memtable.New(), suiteConfig(seed))
		t.Cleanup(w.Wait)
		return w
	})
}

func TestAcceptanceOverBolt(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	offsetstest.Run(t, func(t *testing.T) offsets.Table {
		tb, err := bolttable.Open(filepath.Join(t.TempDir(), "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tb.Close() })
		w := dynamolike.New(tb, suiteConfig(seed))
		t.Cleanup(w.Wait)
		return w
	})
}

// TestProducerIDAfterAmbiguousWrite: the counter write that leases a block
// of producer ids is answered ambiguously (applied or not). Allocation
// must still succeed, with ids no earlier answer can have handed out.
func TestProducerIDAfterAmbiguousWrite(t *testing.T) {
	for _, late := range []bool{false, true} {
		w := dynamolike.New(memtable.New(), dynamolike.Config{Script: func(n int64, ops []offsets.Op) dynamolike.Fate {
			return dynamolike.Fate{Ambiguous: n == 0, Late: late && n == 0}
		}})
		t.Cleanup(w.Wait)
		s := offsets.New(w, offsets.WithRetry(20, 5*time.Millisecond, 20*time.Millisecond))
		id, err := s.AllocateProducerID(context.Background())
		if err != nil {
			t.Fatalf("late=%v: %v", late, err)
		}
		w.Wait()
		// Another process leases the next block: it must not overlap ours.
		other, err := offsets.New(w).AllocateProducerID(context.Background())
		if err != nil || other < id+100 {
			t.Fatalf("late=%v: ours %d, the next process's %d (%v)", late, id, other, err)
		}
	}
}

// TestAmbiguousOffsetCommitIsNotRepeatedLate: an offset commit whose write
// is answered ambiguously (it was applied) must be decided by the store,
// not repeated later by its caller: repeated after another commit of the
// same partition, it would move the committed offset back.
func TestAmbiguousOffsetCommitIsNotRepeatedLate(t *testing.T) {
	for _, other := range []bool{false, true} {
		ctx := context.Background()
		var s *offsets.Store
		var w *dynamolike.Table
		writes := 0
		w = dynamolike.New(memtable.New(), dynamolike.Config{Script: func(n int64, ops []offsets.Op) dynamolike.Fate {
			commit := false
			for _, op := range ops {
				commit = commit || strings.Contains(op.Key.SK, "c#")
			}
			if !commit {
				return dynamolike.Fate{}
			}
			writes++
			switch {
			case writes == 1:
				return dynamolike.Fate{Ambiguous: true} // applied, answered with a timeout
			case writes == 2 && other:
				// Another commit of the partition lands before the first
				// one's outcome is decided.
				if err := s.CommitOffsets(ctx, "g", "", "", -1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 7}}); err != nil {
					t.Errorf("the other commit: %v", err)
				}
			}
			return dynamolike.Fate{}
		}})
		s = offsets.New(w, offsets.WithRetry(10, time.Millisecond, 5*time.Millisecond))
		if err := s.CommitOffsets(ctx, "g", "", "", -1, []offsets.CommittedOffset{{Topic: "t", Partition: 0, Offset: 5}}); err != nil {
			t.Fatalf("other=%v: a commit that landed failed: %v", other, err)
		}
		got, err := s.FetchOffsets(ctx, "g", "")
		want := int64(5)
		if other {
			want = 7
		}
		if err != nil || len(got) != 1 || got[0].Offset != want {
			t.Fatalf("other=%v: committed %+v (%v), want offset %d", other, got, err, want)
		}
	}
}
