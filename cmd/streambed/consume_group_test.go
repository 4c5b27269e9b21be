package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/client"
)

// TestConsumeGroupCommitsWhatItPrinted: `consume --group G --max-records N`
// commits exactly the records it printed, on every partition, so runs one
// after another print every record once.
func TestConsumeGroupCommitsWhatItPrinted(t *testing.T) {
	url := fixedServer(t)
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, "spread", 3, nil); err != nil {
		t.Fatal(err)
	}
	var recs []client.Record
	for i := range 300 {
		recs = append(recs, client.Record{Value: fmt.Appendf(nil, "r%03d", i)}.InPartition(int32(i%3)))
	}
	if _, err := c.Produce(ctx, "spread", recs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for n := 0; len(seen) < 300 && n < 40; n++ {
		var stdout, stderr bytes.Buffer
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		code := run(rctx, []string{"consume", "spread", "--group", "g", "--offset", "earliest", "--max-records", "10", "--format", "%s\n", "--url", url}, &stdout, &stderr)
		cancel()
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", n, code, stderr.String())
		}
		lines := strings.Fields(stdout.String())
		if len(lines) != 10 {
			t.Fatalf("run %d printed %d records, want 10", n, len(lines))
		}
		for _, l := range lines {
			seen[l]++
			if seen[l] > 1 {
				t.Fatalf("run %d printed %s again", n, l)
			}
		}
		offs, err := c.GroupOffsets(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		committed := int64(0)
		for _, o := range offs {
			committed += o.Offset
		}
		if committed != int64(len(seen)) {
			t.Fatalf("after run %d: %d records printed in all, %d committed", n, len(seen), committed)
		}
	}
	if len(seen) != 300 {
		t.Fatalf("%d of 300 records printed after 40 runs", len(seen))
	}
}
