package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBoundGrowsToMax(t *testing.T) {
	p := Policy{Attempts: 10, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	for _, c := range []struct {
		attempt int
		want    time.Duration
	}{{0, 0}, {1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {4, 80 * time.Millisecond}, {5, 100 * time.Millisecond}, {64, 100 * time.Millisecond}} {
		if got := p.Bound(c.attempt); got != c.want {
			t.Errorf("Bound(%d) = %v, want %v", c.attempt, got, c.want)
		}
	}
}

func TestDelayIsFullJitter(t *testing.T) {
	p := Policy{Base: 8 * time.Millisecond, Max: 8 * time.Millisecond}
	low, high := false, false
	for range 2000 {
		d := p.Delay(3)
		if d < 0 || d > 8*time.Millisecond {
			t.Fatalf("delay %v outside [0, 8ms]", d)
		}
		low = low || d < 2*time.Millisecond
		high = high || d > 6*time.Millisecond
	}
	if !low || !high {
		t.Fatalf("delays do not spread over the range (low %v, high %v)", low, high)
	}
}

func TestDoStopsOnTerminalAndBudget(t *testing.T) {
	terminal := errors.New("terminal")
	again := errors.New("again")
	p := Policy{Attempts: 4, Base: time.Microsecond, Max: time.Microsecond}
	for _, c := range []struct {
		name  string
		errs  []error
		calls int
		want  error
	}{
		{"success", []error{nil}, 1, nil},
		{"terminal at once", []error{terminal}, 1, terminal},
		{"retry then succeed", []error{again, again, nil}, 3, nil},
		{"budget spent", []error{again, again, again, again, again}, 4, again},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := p.Do(context.Background(), func(err error) bool { return errors.Is(err, again) }, func(int) error {
				calls++
				return c.errs[calls-1]
			})
			if calls != c.calls || !errors.Is(err, c.want) {
				t.Fatalf("calls %d err %v, want %d %v", calls, err, c.calls, c.want)
			}
		})
	}
}

func TestDoEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	again := errors.New("again")
	calls := 0
	err := Policy{Attempts: 100, Base: time.Hour, Max: time.Hour}.Do(ctx, func(error) bool { return true }, func(int) error {
		calls++
		cancel()
		return again
	})
	if calls != 1 || !errors.Is(err, again) {
		t.Fatalf("calls %d err %v", calls, err)
	}
}
