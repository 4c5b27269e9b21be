package broker

import "sync"

// waiters lets long polls in this process wake as soon as a local commit
// advances a partition. Appends made by other processes are seen by
// polling the head (see Fetch).
type waiters struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func newWaiters() *waiters { return &waiters{m: map[string]chan struct{}{}} }

func partKey(topicID string, p int32) string { return topicID + "#" + itoa(int64(p)) }

// wait returns a channel closed at the partition's next local append.
func (w *waiters) wait(key string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.m[key]
	if !ok {
		ch = make(chan struct{})
		w.m[key] = ch
	}
	return ch
}

func (w *waiters) notify(key string) {
	w.mu.Lock()
	ch, ok := w.m[key]
	delete(w.m, key)
	w.mu.Unlock()
	if ok {
		close(ch)
	}
}
