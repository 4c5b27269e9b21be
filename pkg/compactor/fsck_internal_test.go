package compactor

import (
	"strings"
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

func TestEntryMatchesFooter(t *testing.T) {
	footer := []segments.SliceInfo{
		{TopicID: "t1", Partition: 0, Offset: 8, Length: 100, BaseOffset: -1, Records: 5, LastDelta: 4, MaxTimestamp: 50},
		{TopicID: "t1", Partition: 1, Offset: 108, Length: 300, BaseOffset: 40, Records: 9, LastDelta: 9, MaxTimestamp: 90,
			Points: []segments.Point{{Delta: 0, Pos: 0, MaxTs: 60}, {Delta: 5, Pos: 150, MaxTs: 90}}},
	}
	l0 := offsets.IndexEntry{Base: 10, Last: 14, Records: 5, Offset: 8, Length: 100, MaxTs: 50}
	seg := offsets.IndexEntry{Base: 40, Last: 49, Records: 9, Offset: 108, Length: 300, MaxTs: 90,
		Points: []offsets.Point{{Delta: 0, Pos: 0, MaxTs: 60}, {Delta: 5, Pos: 150, MaxTs: 90}}}
	with := func(e offsets.IndexEntry, f func(*offsets.IndexEntry)) offsets.IndexEntry {
		e.Points = append([]offsets.Point(nil), e.Points...)
		f(&e)
		return e
	}
	cases := []struct {
		name string
		p    int32
		e    offsets.IndexEntry
		want string // "" or a fragment of the complaint
	}{
		{"l0 slice", 0, l0, ""},
		{"merged segment", 1, seg, ""},
		{"no such slice", 0, with(l0, func(e *offsets.IndexEntry) { e.Length = 99 }), "no slice at 8+99"},
		{"another partition's slice", 0, seg, "belongs to t1/1"},
		{"wrong count", 0, with(l0, func(e *offsets.IndexEntry) { e.Records = 4 }), "5 records over 5 offsets"},
		{"wrong base", 1, with(seg, func(e *offsets.IndexEntry) { e.Base, e.Last = 41, 50 }), "starts at offset 40"},
		{"points missing", 1, with(seg, func(e *offsets.IndexEntry) { e.Points = nil }), "1 points, the footer has 2"},
		{"point moved", 1, with(seg, func(e *offsets.IndexEntry) { e.Points[1].Pos = 151 }), "point 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := entryMatchesFooter("t1", c.p, c.e, footer)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
