package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
)

func owners(t *testing.T, got map[string][]offsets.TopicPartitions, counts map[string]int32) map[string]int {
	t.Helper()
	seen := map[tp]string{}
	load := map[string]int{}
	for id, list := range got {
		for _, x := range toTPs(list) {
			if prev, dup := seen[x]; dup {
				t.Fatalf("%v assigned to %s and %s", x, prev, id)
			}
			seen[x] = id
			load[id]++
		}
	}
	for topic, n := range counts {
		for p := range n {
			if _, ok := seen[tp{topic, p}]; !ok {
				t.Fatalf("%s/%d unassigned", topic, p)
			}
		}
	}
	return load
}

func TestRangeAssignor(t *testing.T) {
	members := []memberSub{{"a", []string{"t"}}, {"b", []string{"t"}}, {"c", []string{"t"}}}
	got := assign(AssignorRange, members, map[string]int32{"t": 7}, nil)
	// Kafka's RangeAssignor: 7 over 3 → 3, 2, 2 contiguous.
	want := map[string]string{"a": "[{t [0 1 2]}]", "b": "[{t [3 4]}]", "c": "[{t [5 6]}]"}
	for id, w := range want {
		if fmt.Sprint(got[id]) != w {
			t.Errorf("%s got %v, want %s", id, got[id], w)
		}
	}
}

func TestUniformAssignorBalancedAndSticky(t *testing.T) {
	counts := map[string]int32{"a": 6, "b": 5}
	members := []memberSub{{"m1", []string{"a", "b"}}, {"m2", []string{"a", "b"}}, {"m3", []string{"a", "b"}}}
	first := assign(AssignorUniform, members, counts, nil)
	load := owners(t, first, counts)
	for id, n := range load {
		if n < 3 || n > 4 {
			t.Fatalf("%s has %d of 11 partitions", id, n)
		}
	}
	// A fourth member: balance again, moving as little as possible.
	members = append(members, memberSub{"m4", []string{"a", "b"}})
	second := assign(AssignorUniform, members, counts, first)
	load = owners(t, second, counts)
	moved := 0
	for _, id := range []string{"m1", "m2", "m3"} {
		moved += len(minusTPs(toTPs(first[id]), toTPs(second[id])))
	}
	if load["m4"] < 2 || moved != load["m4"] {
		t.Fatalf("m4 got %d partitions and %d moved: only what m4 needs should move", load["m4"], moved)
	}
	for id, n := range load {
		if n < 2 || n > 3 {
			t.Fatalf("%s has %d of 11 partitions", id, n)
		}
	}
	// A member leaves: its partitions spread, the others keep theirs.
	third := assign(AssignorUniform, members[:3], counts, second)
	owners(t, third, counts)
	for _, id := range []string{"m1", "m2", "m3"} {
		if len(minusTPs(toTPs(second[id]), toTPs(third[id]))) != 0 {
			t.Fatalf("%s lost partitions when another member left", id)
		}
	}
}

func TestUniformAssignorHeterogeneous(t *testing.T) {
	counts := map[string]int32{"x": 4, "y": 4}
	members := []memberSub{{"m1", []string{"x"}}, {"m2", []string{"x", "y"}}, {"m3", []string{"y"}}}
	got := assign(AssignorUniform, members, counts, nil)
	owners(t, got, counts)
	for _, x := range toTPs(got["m1"]) {
		if x.topic != "x" {
			t.Fatal("m1 got a topic it does not subscribe to")
		}
	}
	for _, x := range toTPs(got["m3"]) {
		if x.topic != "y" {
			t.Fatal("m3 got a topic it does not subscribe to")
		}
	}
	loads := []int{len(toTPs(got["m1"])), len(toTPs(got["m2"])), len(toTPs(got["m3"]))}
	if slices.Max(loads)-slices.Min(loads) > 1 {
		t.Fatalf("loads %v", loads)
	}
}
