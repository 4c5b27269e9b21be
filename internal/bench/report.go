package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText prints the result for humans.
func (r *Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := r.Config
	fmt.Fprintf(tw, "endpoint\t%s\n", c.Endpoint)
	fmt.Fprintf(tw, "load\t%d producers, %d consumers, %d partitions, %d-byte records, %d-byte batches, %dms linger, %.1fs\n",
		c.Producers, c.Consumers, c.Partitions, c.RecordBytes, c.BatchBytes, c.LingerMs, c.Seconds)
	fmt.Fprintf(tw, "produced\t%d records (%.1f MB), %d failed: %.2f MB/s, %.0f records/s\n", r.Produced, float64(r.ProducedBytes)/1e6, r.Failed, r.ProduceMBps, r.ProduceRecPerS)
	fmt.Fprintf(tw, "consumed\t%d records (%.1f MB): %.2f MB/s\n", r.Consumed, float64(r.ConsumedBytes)/1e6, r.ConsumeMBps)
	fmt.Fprintln(tw, "\nlatency (ms)\tp50\tp90\tp99\tmax")
	for _, l := range []struct {
		name string
		l    Latency
	}{{"produce (to ack)", r.ProduceLatency}, {"end to end", r.EndToEnd}} {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\n", l.name, l.l.P50, l.l.P90, l.l.P99, l.l.Max)
	}
	h := r.HTTP
	fmt.Fprintf(tw, "\nAPI requests\t%d produce (%.0f KiB avg), %d consume, %d other\n", h.ProduceRequests, float64(h.ProduceBytes)/float64(max(h.ProduceRequests, 1))/1024, h.ConsumeRequests, h.OtherRequests)
	if g := r.PerGB; g != nil {
		o, m := r.Objects, r.Metadata
		fmt.Fprintf(tw, "object store\t%d PUT (%.0f KiB avg), %d GET, %d LIST, %d DELETE\n", o.Put, g.AverageObjectBytes/1024, o.Get, o.List, o.Delete)
		fmt.Fprintf(tw, "metadata\t%d reads (%d items), %d writes (%d items, %d in transactions)\n", m.Get+m.Query, m.ItemsRead, m.Write, m.WriteOps, m.TransactionalOps)
		fmt.Fprintln(tw, "\nper GB\t")
		fmt.Fprintf(tw, "object PUT / GB written\t%.0f\n", g.PutsPerGBWritten)
		fmt.Fprintf(tw, "object GET / GB read\t%.0f\n", g.GetsPerGBRead)
		fmt.Fprintf(tw, "metadata write units / GB\t%.0f\n", g.MetadataWriteUnitsPerGB)
		fmt.Fprintf(tw, "metadata read units / GB\t%.0f\n", g.MetadataReadUnitsPerGB)
		fmt.Fprintf(tw, "produce requests / GB\t%.0f\n", g.ProduceRequestsPerGB)
		fmt.Fprintf(tw, "consume requests / GB\t%.0f\n", g.ConsumeRequestsPerGB)
	} else {
		fmt.Fprintln(tw, "storage requests\tunknown (remote endpoint; run without --url to count them)")
	}
	if k := r.Cost; k != nil {
		fmt.Fprintln(tw, "\ncost per GB written and read once (USD)\t")
		fmt.Fprintf(tw, "S3 requests\t%.4f\n", k.S3Requests)
		fmt.Fprintf(tw, "DynamoDB\t%.4f\n", k.DynamoDB)
		fmt.Fprintf(tw, "Lambda (arm64)\t%.4f\n", k.Lambda)
		fmt.Fprintf(tw, "API Gateway HTTP API\t%.4f\n", k.APIGateway)
		fmt.Fprintf(tw, "total\t%.4f  (+ S3 storage %.3f per GB-month)\n", k.Total, k.S3StorageGBMonth)
		fmt.Fprintf(tw, "Kinesis on-demand / MSK Serverless\t%.3f / %.3f (data charges only)\n", k.KinesisOnDemand, k.MSKServerless)
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(tw, "\nraw storage baseline\t%d-byte objects, %d workers\n", b.ObjectBytes, b.Concurrency)
		fmt.Fprintf(tw, "object PUT\tp50 %.1f ms, p99 %.1f ms, %.1f MB/s\n", b.PutLatency.P50, b.PutLatency.P99, b.PutMBps)
		fmt.Fprintf(tw, "object GET\tp50 %.1f ms, p99 %.1f ms, %.1f MB/s\n", b.GetLatency.P50, b.GetLatency.P99, b.GetMBps)
		fmt.Fprintf(tw, "metadata transaction (3 items)\tp50 %.1f ms, p99 %.1f ms, %.0f/s\n", b.CommitLatency.P50, b.CommitLatency.P99, b.CommitsPerSecs)
		if o := r.Overhead; o != nil {
			fmt.Fprintf(tw, "broker overhead\tproduce p50 = %.2fx (PUT p50 + transaction p50); throughput = %.2fx raw PUT\n", o.ProduceP50OverStorageP50, o.ThroughputOverRawPut)
		}
	}
	return tw.Flush()
}
