package lambdafn

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/streambed/streambed/pkg/compactor"
)

// compactMargin stops compaction this long before the invocation deadline.
const compactMargin = 5 * time.Second

// CompactHandler runs one compaction pass per invocation (an EventBridge
// Scheduler event, or any event: its content is not used), then publishes
// the run's stats and every group's consumer lag as CloudWatch metrics.
func (a *App) CompactHandler() func(context.Context, json.RawMessage) (compactor.Stats, error) {
	return func(ctx context.Context, _ json.RawMessage) (compactor.Stats, error) {
		ctx, cancel := invocationContext(ctx, compactMargin)
		defer cancel()
		stats, err := a.Compactor.Run(ctx)
		if err != nil {
			return stats, err
		}
		emitCompaction(a.Out, a.Name, stats)
		a.emitLag(ctx)
		return stats, nil
	}
}

// emitLag publishes each group's total and max lag (records) and its
// largest time lag, dimensioned by group.
func (a *App) emitLag(ctx context.Context) {
	for after := ""; ctx.Err() == nil; {
		groups, next, err := a.Broker.ListGroups(ctx, after, 100)
		if err != nil {
			a.Log.Warn("listing groups for lag metrics", "err", err)
			return
		}
		for _, g := range groups {
			lags, err := a.Broker.GroupLag(ctx, g)
			if err != nil {
				continue
			}
			var total, maxLag, maxTime int64
			for _, l := range lags {
				total += l.Lag
				maxLag = max(maxLag, l.Lag)
				maxTime = max(maxTime, l.TimeLagMs)
			}
			emitLag(a.Out, g, total, maxLag, maxTime)
		}
		if next == "" {
			return
		}
		after = next
	}
}

func emitCompaction(w io.Writer, function string, s compactor.Stats) {
	writeEMF(w, []string{"Function"}, map[string]string{"Function": function}, []metric{
		{"BytesMerged", "Bytes", s.BytesMerged}, {"EntriesMerged", "Count", int64(s.EntriesMerged)},
		{"SegmentsWritten", "Count", int64(s.SegmentsWritten)}, {"EntriesDropped", "Count", int64(s.EntriesDropped)},
		{"BytesDropped", "Bytes", s.BytesDropped}, {"RecordsRemoved", "Count", s.RecordsRemoved},
		{"ObjectsDeleted", "Count", int64(s.ObjectsDeleted)}, {"OrphansDeleted", "Count", int64(s.OrphansDeleted)},
		{"PartitionsBehind", "Count", int64(s.PartitionsBehind)}, {"CompactionErrors", "Count", int64(s.Errors)},
		{"CompactionDuration", "Milliseconds", s.DurationMs},
	})
}

func emitLag(w io.Writer, group string, total, maxLag, maxTimeMs int64) {
	writeEMF(w, []string{"Group"}, map[string]string{"Group": group}, []metric{
		{"ConsumerLag", "Count", total}, {"ConsumerMaxLag", "Count", maxLag}, {"ConsumerTimeLag", "Milliseconds", maxTimeMs},
	})
}

type metric struct {
	name, unit string
	value      int64
}

// writeEMF writes one CloudWatch embedded-metric-format record (a JSON
// line on stdout that CloudWatch Logs turns into metrics), in the
// "Streambed" namespace.
func writeEMF(w io.Writer, dims []string, dimValues map[string]string, metrics []metric) {
	defs := make([]map[string]string, len(metrics))
	doc := map[string]any{}
	for i, m := range metrics {
		defs[i] = map[string]string{"Name": m.name, "Unit": m.unit}
		doc[m.name] = m.value
	}
	for k, v := range dimValues {
		doc[k] = v
	}
	doc["_aws"] = map[string]any{
		"Timestamp":         time.Now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{"Namespace": "Streambed", "Dimensions": [][]string{dims}, "Metrics": defs}},
	}
	line, _ := json.Marshal(doc)
	_, _ = w.Write(append(line, '\n'))
}
