package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/client"
)

// headOp is an append of n records (answered with its base offset) or a
// read of the partition's log end.
type headOp struct {
	append bool
	n      int64
}

type headOut struct{ v int64 }

// headModel: a partition head is a counter that appends advance by their
// record count; an append's base is the log end it found.
var headModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		end, in, out := state.(int64), input.(headOp), output.(headOut)
		if in.append {
			return out.v == end, end + in.n
		}
		return out.v == end, end
	},
	DescribeOperation: func(input, output any) string {
		if in := input.(headOp); in.append {
			return fmt.Sprintf("append(%d) -> base %d", in.n, output.(headOut).v)
		}
		return fmt.Sprintf("read() -> %d", output.(headOut).v)
	},
}

// commitModel: a group's committed offset for a partition is a register.
var commitModel = porcupine.Model{
	Init: func() any { return int64(-1) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(headOp) // append: commit in.n; else read
		if in.append {
			return true, in.n
		}
		return output.(headOut).v == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		if in := input.(headOp); in.append {
			return fmt.Sprintf("commit(%d)", in.n)
		}
		return fmt.Sprintf("read() -> %d", output.(headOut).v)
	},
}

// TestLinearizableHeadsAndCommits records concurrent histories of a
// partition head (appends and log-end reads) and of a group's committed
// offset (commits and reads) through the API and checks them with
// porcupine.
func TestLinearizableHeadsAndCommits(t *testing.T) {
	for _, mk := range backends(t) {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			s := seed(t)
			c := newCluster(t, be, s, false)
			ctx := context.Background()
			cl, _ := client.New(c.url)
			if _, err := cl.CreateTopic(ctx, "lin", 1, nil); err != nil {
				t.Fatal(err)
			}
			clients, perClient := 6, 40
			if be.name != "embedded" {
				perClient = 15
			}
			var mu sync.Mutex
			var heads, commits []porcupine.Operation
			var wg sync.WaitGroup
			for id := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(s, uint64(id)))
					for range perClient {
						in := headOp{append: rnd.IntN(5) < 3, n: 1 + rnd.Int64N(3)}
						call := time.Now().UnixNano()
						var out headOut
						if in.append {
							recs := make([]json.RawMessage, in.n)
							for i := range recs {
								recs[i] = rec("x")
							}
							var res api.PartitionProduceResponse
							_, p, err := post(ctx, http.DefaultClient, c.url+"/v1/topics/lin/partitions/0/records", api.PartitionProduceRequest{Records: recs}, &res)
							if err != nil || p != nil {
								t.Errorf("append: %v %+v", err, p)
								return
							}
							out.v = res.BaseOffset
						} else {
							parts, err := cl.Partitions(ctx, "lin")
							if err != nil {
								t.Error(err)
								return
							}
							out.v = parts[0].LogEndOffset
						}
						ret := time.Now().UnixNano()
						mu.Lock()
						heads = append(heads, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
						mu.Unlock()

						cin := headOp{append: rnd.IntN(2) == 0, n: rnd.Int64N(1000)}
						call = time.Now().UnixNano()
						var cout headOut
						if cin.append {
							if err := cl.CommitGroupOffsets(ctx, "lin-group", []api.OffsetCommit{{Topic: "lin", Partition: 0, Offset: cin.n}}); err != nil {
								t.Errorf("commit: %v", err)
								return
							}
						} else {
							offs, err := cl.GroupOffsets(ctx, "lin-group")
							if err != nil && client.Code(err) != api.CodeUnknownGroup {
								t.Errorf("read commits: %v", err)
								return
							}
							cout.v = -1
							for _, o := range offs {
								cout.v = o.Offset
							}
						}
						ret = time.Now().UnixNano()
						mu.Lock()
						commits = append(commits, porcupine.Operation{ClientId: id, Input: cin, Call: call, Output: cout, Return: ret})
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for _, h := range []struct {
				name  string
				model porcupine.Model
				ops   []porcupine.Operation
			}{{"partition head", headModel, heads}, {"committed offset", commitModel, commits}} {
				res := porcupine.CheckOperationsTimeout(h.model, h.ops, time.Minute)
				if res != porcupine.Ok {
					t.Fatalf("%s history of %d operations is %v (not linearizable)", h.name, len(h.ops), res)
				}
				t.Logf("%s: %d concurrent operations from %d clients, linearizable", h.name, len(h.ops), clients)
			}
		})
	}
}

// TestModelsRejectBadHistories proves the checker can fail: a read that
// misses a completed append, and two appends given the same base.
func TestModelsRejectBadHistories(t *testing.T) {
	stale := []porcupine.Operation{
		{ClientId: 0, Input: headOp{append: true, n: 2}, Call: 0, Output: headOut{0}, Return: 10},
		{ClientId: 1, Input: headOp{}, Call: 20, Output: headOut{0}, Return: 30},
	}
	sameBase := []porcupine.Operation{
		{ClientId: 0, Input: headOp{append: true, n: 1}, Call: 0, Output: headOut{0}, Return: 10},
		{ClientId: 1, Input: headOp{append: true, n: 1}, Call: 0, Output: headOut{0}, Return: 10},
	}
	lostCommit := []porcupine.Operation{
		{ClientId: 0, Input: headOp{append: true, n: 7}, Call: 0, Output: headOut{}, Return: 10},
		{ClientId: 1, Input: headOp{}, Call: 20, Output: headOut{-1}, Return: 30},
	}
	for name, c := range map[string]struct {
		m   porcupine.Model
		ops []porcupine.Operation
	}{"stale read": {headModel, stale}, "same base": {headModel, sameBase}, "lost commit": {commitModel, lostCommit}} {
		if porcupine.CheckOperations(c.m, c.ops) {
			t.Errorf("%s: accepted as linearizable", name)
		}
	}
}
