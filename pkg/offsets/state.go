package offsets

import (
	"context"
	"fmt"
)

// State is a small named value (such as where the compactor stopped) kept
// in the table, versioned like every item.
type State struct {
	Name    string
	Value   string
	Version int64
}

type stateValue struct {
	Value string `json:"value"`
}

func (c *stateValue) validate() error { return nil }

func stateKey(name string) Key { return Key{"state", "s#" + name} }

// LoadState reads a named value ("" if never saved).
func (s *Store) LoadState(ctx context.Context, name string) (State, error) {
	var v stateValue
	it, err := s.get(ctx, stateKey(name), &v)
	if err != nil {
		return State{}, err
	}
	return State{Name: name, Value: v.Value, Version: it.Version}, nil
}

// SaveState writes a value if it is unchanged since it was loaded (two
// compactors saving at once: one wins, the other's progress is redone).
func (s *Store) SaveState(ctx context.Context, c State, value string) (State, error) {
	if len(value) > 2048 {
		return c, fmt.Errorf("offsets: state value of %d bytes", len(value))
	}
	if err := s.t.Write(ctx, Put(stateKey(c.Name), c.Version, encode(&stateValue{Value: value}))); err != nil {
		return c, err
	}
	return State{Name: c.Name, Value: value, Version: c.Version + 1}, nil
}
