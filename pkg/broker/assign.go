package broker

import (
	"cmp"
	"slices"

	"github.com/streambed/streambed/pkg/offsets"
)

// Assignors compute target assignments from the members' subscriptions and
// the subscribed topics' partition counts, server-side (KIP-848 style).
const (
	// AssignorUniform balances partition counts across members and keeps
	// each member's previous partitions where it can (uniform-sticky).
	AssignorUniform = "uniform"
	// AssignorRange gives each member a contiguous range of every topic it
	// subscribes to, as Kafka's RangeAssignor.
	AssignorRange = "range"
)

type tp struct {
	topic string
	p     int32
}

func cmpTP(a, b tp) int {
	if c := cmp.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return cmp.Compare(a.p, b.p)
}

type memberSub struct {
	id     string
	topics []string
}

func toTPs(list []offsets.TopicPartitions) []tp {
	var out []tp
	for _, t := range list {
		for _, p := range t.Partitions {
			out = append(out, tp{t.Topic, p})
		}
	}
	return out
}

func fromTPs(list []tp) []offsets.TopicPartitions {
	slices.SortFunc(list, cmpTP)
	list = slices.Compact(list)
	var out []offsets.TopicPartitions
	for _, x := range list {
		if n := len(out); n > 0 && out[n-1].Topic == x.topic {
			out[n-1].Partitions = append(out[n-1].Partitions, x.p)
			continue
		}
		out = append(out, offsets.TopicPartitions{Topic: x.topic, Partitions: []int32{x.p}})
	}
	return out
}

// assign computes targets for members (sorted by id).
func assign(assignor string, members []memberSub, counts map[string]int32, prev map[string][]offsets.TopicPartitions) map[string][]offsets.TopicPartitions {
	var got map[string][]tp
	if assignor == AssignorRange {
		got = assignRange(members, counts)
	} else {
		got = assignUniform(members, counts, prev)
	}
	out := make(map[string][]offsets.TopicPartitions, len(members))
	for _, m := range members {
		out[m.id] = fromTPs(got[m.id])
	}
	return out
}

func assignRange(members []memberSub, counts map[string]int32) map[string][]tp {
	out := map[string][]tp{}
	byTopic := map[string][]string{}
	for _, m := range members {
		for _, t := range m.topics {
			byTopic[t] = append(byTopic[t], m.id)
		}
	}
	for topic, ids := range byTopic {
		n := counts[topic]
		if n == 0 {
			continue
		}
		slices.Sort(ids)
		per, extra := n/int32(len(ids)), n%int32(len(ids))
		start := int32(0)
		for i, id := range ids {
			size := per
			if int32(i) < extra {
				size++
			}
			for p := start; p < start+size; p++ {
				out[id] = append(out[id], tp{topic, p})
			}
			start += size
		}
	}
	return out
}

func assignUniform(members []memberSub, counts map[string]int32, prev map[string][]offsets.TopicPartitions) map[string][]tp {
	subscribed := map[string]map[string]bool{} // member -> topics
	eligible := map[string][]string{}          // topic -> members, sorted
	for _, m := range members {
		subscribed[m.id] = map[string]bool{}
		for _, t := range m.topics {
			if !subscribed[m.id][t] {
				subscribed[m.id][t] = true
				eligible[t] = append(eligible[t], m.id)
			}
		}
	}
	var all []tp
	for t, ids := range eligible {
		slices.Sort(ids)
		for p := range counts[t] {
			all = append(all, tp{t, p})
		}
	}
	slices.SortFunc(all, cmpTP)
	owner := map[tp]string{}
	load := map[string]int{}
	// Keep what members had, where still valid.
	for _, m := range members {
		for _, x := range toTPs(prev[m.id]) {
			if subscribed[m.id][x.topic] && x.p < counts[x.topic] && owner[x] == "" {
				owner[x] = m.id
				load[m.id]++
			}
		}
	}
	leastLoaded := func(t string, except string) string {
		best := ""
		for _, id := range eligible[t] {
			if id != except && (best == "" || load[id] < load[best]) {
				best = id
			}
		}
		return best
	}
	for _, x := range all {
		if owner[x] == "" {
			id := leastLoaded(x.topic, "")
			owner[x] = id
			load[id]++
		}
	}
	// Even out: move partitions from members two or more above an eligible
	// one, fewest moves first, until no move helps.
	for moved := true; moved; {
		moved = false
		for _, x := range all {
			from := owner[x]
			to := leastLoaded(x.topic, from)
			if to != "" && load[from]-load[to] >= 2 {
				owner[x] = to
				load[from]--
				load[to]++
				moved = true
			}
		}
	}
	out := map[string][]tp{}
	for _, x := range all {
		out[owner[x]] = append(out[owner[x]], x)
	}
	return out
}
