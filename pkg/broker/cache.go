package broker

import (
	"container/list"
	"sync"
)

// lru is a size-bounded least-recently-used cache. Values are immutable
// (decoded slices of immutable objects), so sharing them is safe.
type lru[V any] struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key  string
	val  V
	size int64
}

func newLRU[V any](maxBytes int64) *lru[V] {
	return &lru[V]{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) add(key string, val V, size int64) {
	if size > c.max/4 {
		return // one huge value would evict everything useful
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[key] = c.ll.PushFront(&lruEntry[V]{key: key, val: val, size: size})
	c.size += size
	for c.size > c.max {
		e := c.ll.Back()
		ent := e.Value.(*lruEntry[V])
		c.ll.Remove(e)
		delete(c.items, ent.key)
		c.size -= ent.size
	}
}

// put adds or replaces key's value.
func (c *lru[V]) put(key string, val V, size int64) {
	c.mu.Lock()
	if e, ok := c.items[key]; ok {
		c.size -= e.Value.(*lruEntry[V]).size
		c.ll.Remove(e)
		delete(c.items, key)
	}
	c.mu.Unlock()
	c.add(key, val, size)
}

func (c *lru[V]) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
