package dynamolike_test

import (
	"path/filepath"
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
