package offsetstest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

// BenchmarkCommits measures produce commits per second on a table: every
// op commits one object with one 100-record slice, to one partition or
// spread over 16, from 1 or 8 concurrent writers. It reports commits/s and
// the share of commits that lost at least one race.
func BenchmarkCommits(b *testing.B, newTable func(b *testing.B) offsets.Table) {
	for _, parts := range []int32{1, 16} {
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("partitions=%d/writers=%d", parts, writers), func(b *testing.B) {
				ctx := context.Background()
				s := offsets.New(newTable(b))
				tp, err := s.CreateTopic(ctx, fmt.Sprintf("bench-%d-%d", parts, writers), parts, offsets.DefaultTopicConfig())
				if err != nil {
					b.Fatal(err)
				}
				var next, failed atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							a := offsets.Append{Partition: int32(i % int64(parts)), Records: 100, Length: 100 << 10, Bytes: 100 << 10, ExpectedOffset: -1}
							res, err := s.Commit(ctx, tp, offsets.ObjectMeta{Key: fmt.Sprintf("l0/b/%d-%d", w, i), Size: 100 << 10}, []offsets.Append{a})
							if err != nil || res[0].Err != nil {
								failed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
				if f := failed.Load(); f > 0 {
					b.Errorf("%d of %d commits failed", f, b.N)
				}
			})
		}
	}
}
