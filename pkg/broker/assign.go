package broker

import (
	"cmp"
	"container/heap"
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

// assignUniform balances partition counts over members, keeping members'
// previous partitions where it can. With M members and P partitions it
// costs O((P + moves) log M) per subscribed topic, so a group of thousands
// of members over thousands of partitions is assigned in milliseconds.
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
	topics := make([]string, 0, len(eligible))
	for t, ids := range eligible {
		slices.Sort(ids)
		topics = append(topics, t)
	}
	slices.Sort(topics)
	owner := map[tp]string{}
	load := map[string]int{}
	held := map[string]map[string][]int32{} // member -> topic -> partitions
	give := func(x tp, id string) {
		owner[x] = id
		load[id]++
		if held[id] == nil {
			held[id] = map[string][]int32{}
		}
		held[id][x.topic] = append(held[id][x.topic], x.p)
	}
	// Keep what members had, where still valid.
	for _, m := range members {
		for _, x := range toTPs(prev[m.id]) {
			if subscribed[m.id][x.topic] && x.p < counts[x.topic] && owner[x] == "" {
				give(x, m.id)
			}
		}
	}
	// Per topic, a heap of its eligible members by load. Entries go stale
	// when a member's load changes (through any topic); they are pushed
	// again and stale ones skipped when popped.
	lows := map[string]*loadHeap{}
	for _, t := range topics {
		h := &loadHeap{}
		for _, id := range eligible[t] {
			h.entries = append(h.entries, loadEntry{load[id], id})
		}
		heap.Init(h)
		lows[t] = h
	}
	changed := func(id string) {
		for t := range subscribed[id] {
			heap.Push(lows[t], loadEntry{load[id], id})
		}
	}
	least := func(t string) string {
		h := lows[t]
		for h.Len() > 0 {
			e := h.entries[0]
			if e.load == load[e.id] {
				return e.id
			}
			heap.Pop(h)
		}
		return ""
	}
	for _, t := range topics {
		for p := range counts[t] {
			x := tp{t, p}
			if owner[x] != "" {
				continue
			}
			id := least(t)
			give(x, id)
			changed(id)
		}
	}
	// Even out, topic by topic: while the most loaded member holding one of
	// the topic's partitions is two or more above the least loaded member
	// eligible for it, move one (the highest-numbered, so the others stay).
	for moved := true; moved; {
		moved = false
		for _, t := range topics {
			highs := &loadHeap{max: true}
			for _, id := range eligible[t] {
				if len(held[id][t]) > 0 {
					highs.entries = append(highs.entries, loadEntry{load[id], id})
				}
			}
			heap.Init(highs)
			for highs.Len() > 0 {
				e := heap.Pop(highs).(loadEntry)
				if e.load != load[e.id] || len(held[e.id][t]) == 0 {
					continue // stale
				}
				to := least(t)
				if to == "" || load[e.id]-load[to] < 2 {
					break
				}
				ps := held[e.id][t]
				slices.Sort(ps)
				p := ps[len(ps)-1]
				held[e.id][t] = ps[:len(ps)-1]
				load[e.id]--
				give(tp{t, p}, to)
				changed(e.id)
				changed(to)
				heap.Push(highs, loadEntry{load[e.id], e.id})
				moved = true
			}
		}
	}
	out := map[string][]tp{}
	for id, byTopic := range held {
		for t, ps := range byTopic {
			for _, p := range ps {
				out[id] = append(out[id], tp{t, p})
			}
		}
	}
	return out
}

type loadEntry struct {
	load int
	id   string
}

// loadHeap orders members by load (least first, or most with max), ties
// by id so results are deterministic.
type loadHeap struct {
	entries []loadEntry
	max     bool
}

func (h loadHeap) Len() int { return len(h.entries) }
func (h loadHeap) Less(i, j int) bool {
	a, b := h.entries[i], h.entries[j]
	if a.load != b.load {
		return (a.load < b.load) != h.max
	}
	return a.id < b.id
}
func (h loadHeap) Swap(i, j int) { h.entries[i], h.entries[j] = h.entries[j], h.entries[i] }
func (h *loadHeap) Push(x any)   { h.entries = append(h.entries, x.(loadEntry)) }
func (h *loadHeap) Pop() any {
	e := h.entries[len(h.entries)-1]
	h.entries = h.entries[:len(h.entries)-1]
	return e
}
