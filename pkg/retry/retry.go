// Package retry is Streambed's one retry policy: capped exponential
// backoff with full jitter (a delay drawn uniformly from zero up to the
// exponential bound, which spreads racing writers apart best), within a
// budget of attempts and the caller's context deadline. The metadata
// store's race loop, the group protocol, the AWS SDK's transport retries,
// the compactor and the Go client all draw their delays from it, so the
// layers' budgets multiply to a known bound instead of compounding
// unseen.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a retry budget.
type Policy struct {
	// Attempts bounds the tries, the first included (at least 1).
	Attempts int
	// Base is the bound of the first delay; each later bound doubles, up
	// to Max.
	Base, Max time.Duration
}

// Bound is the upper end of the delay before try number attempt (the
// first retry is attempt 1).
func (p Policy) Bound(attempt int) time.Duration {
	if attempt < 1 || p.Base <= 0 {
		return 0
	}
	d := p.Base << min(attempt-1, 30)
	if d <= 0 || (p.Max > 0 && d > p.Max) {
		d = p.Max
	}
	return d
}

// Delay is the full-jitter delay before try number attempt.
func (p Policy) Delay(attempt int) time.Duration {
	b := p.Bound(attempt)
	if b <= 0 {
		return 0
	}
	return rand.N(b + 1)
}

// Sleep waits Delay(attempt), or until ctx ends (its error).
func (p Policy) Sleep(ctx context.Context, attempt int) error {
	return SleepCtx(ctx, p.Delay(attempt))
}

// SleepCtx waits d, or until ctx ends (its error).
func SleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Do calls fn until it returns nil or an error retryable rejects, or the
// attempts are spent (the last error), or ctx ends (the last error, or
// ctx's if there was none).
func (p Policy) Do(ctx context.Context, retryable func(error) bool, fn func(attempt int) error) error {
	var last error
	for attempt := 0; attempt < max(p.Attempts, 1); attempt++ {
		if attempt > 0 {
			if err := p.Sleep(ctx, attempt); err != nil {
				if last != nil {
					return last
				}
				return err
			}
		}
		last = fn(attempt)
		if last == nil || !retryable(last) {
			return last
		}
	}
	return last
}
