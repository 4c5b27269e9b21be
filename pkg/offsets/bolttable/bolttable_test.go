package bolttable_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/bolttable"
	"github.com/streambed/streambed/pkg/offsets/offsetstest"
)

func open(t *testing.T, path string, opts ...bolttable.Option) *bolttable.Table {
	t.Helper()
	tb, err := bolttable.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

func TestAcceptance(t *testing.T) {
	offsetstest.Run(t, func(t *testing.T) offsets.Table {
		return open(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	ctx := context.Background()
	tb, err := bolttable.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := offsets.New(tb)
	tp, err := s.CreateTopic(ctx, "durable", 1, offsets.DefaultTopicConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, tp, offsets.ObjectMeta{Key: "o1", Size: 1}, []offsets.Append{{Records: 4, Length: 1, ExpectedOffset: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Write(ctx, offsets.Put(offsets.Key{PK: "a", SK: "b"}, 0, nil)); err == nil {
		t.Fatal("write after Close succeeded")
	}
	s2 := offsets.New(open(t, path))
	st, err := s2.Partitions(ctx, tp)
	if err != nil || st[0].LogEnd != 4 {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
}

func TestSecondOpenerWaitsThenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	open(t, path)
	start := time.Now()
	if _, err := bolttable.Open(path); err == nil {
		t.Fatal("a second process-level open of a locked file succeeded")
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatal("did not wait for the lock")
	}
}

func TestSweepDeletesExpired(t *testing.T) {
	now := time.Unix(2000, 0)
	tb := open(t, filepath.Join(t.TempDir(), "m.db"), bolttable.WithClock(func() time.Time { return now }))
	ctx := context.Background()
	expired := offsets.Put(offsets.Key{PK: "x", SK: "old"}, 0, []byte("v"))
	expired.TTL = 1999
	live := offsets.Put(offsets.Key{PK: "x", SK: "new"}, 0, []byte("v"))
	live.TTL = 2001
	if err := tb.Write(ctx, expired, live, offsets.Put(offsets.Key{PK: "x", SK: "forever"}, 0, nil)); err != nil {
		t.Fatal(err)
	}
	if err := tb.Sweep(); err != nil {
		t.Fatal(err)
	}
	items, _, _ := tb.Query(ctx, "x", offsets.Prefix(""), 0)
	if len(items) != 2 || items[0].SK != "forever" || items[1].SK != "new" {
		t.Fatalf("after sweep %+v", items)
	}
}

// TestKillNineLeavesNoPartialCommit runs a child process that writes
// transactions of 3 items (all with the same round number) as fast as it
// can, kills it with SIGKILL mid-stream, and checks on reopen that every
// transaction is all or nothing.
func TestKillNineLeavesNoPartialCommit(t *testing.T) {
	if os.Getenv("BOLTTABLE_CHILD") != "" {
		childWriter(os.Getenv("BOLTTABLE_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	for trial := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineLeavesNoPartialCommit$")
		cmd.Env = append(os.Environ(), "BOLTTABLE_CHILD="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+200*trial) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		tb, err := bolttable.Open(path)
		if err != nil {
			t.Fatalf("reopen after kill -9: %v", err)
		}
		items, _, err := tb.Query(context.Background(), "crash", offsets.Prefix(""), 0)
		if err != nil {
			t.Fatal(err)
		}
		rounds := map[string]int{}
		for _, it := range items {
			rounds[string(it.Value)]++
		}
		for r, n := range rounds {
			if n != 3 {
				t.Fatalf("trial %d: round %s has %d of its 3 items: a partial commit is visible", trial, r, n)
			}
		}
		if len(rounds) == 0 {
			t.Fatalf("trial %d: the child wrote nothing before it was killed", trial)
		}
		t.Logf("trial %d: %d complete transactions survived kill -9", trial, len(rounds))
		tb.Close()
	}
}

func childWriter(path string) {
	tb, err := bolttable.Open(path, bolttable.WithSweepInterval(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	for r := 0; ; r++ {
		round := strconv.Itoa(r) + "-" + strconv.Itoa(os.Getpid())
		var ops []offsets.Op
		for i := range 3 {
			ops = append(ops, offsets.Put(offsets.Key{PK: "crash", SK: round + "/" + strconv.Itoa(i)}, 0, []byte(round)))
		}
		if err := tb.Write(ctx, ops...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

func BenchmarkCommits(b *testing.B) {
	offsetstest.BenchmarkCommits(b, func(b *testing.B) offsets.Table {
		tb, err := bolttable.Open(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tb.Close() })
		return tb
	})
}
