// Package chaos is the consistency harness: concurrent producers
// (idempotent and not) and group consumers run against the HTTP API while
// faults are injected into the storage underneath (internal/faults) and
// the broker "process" is killed at every step of its commit path, with
// the compactor running alongside. A checker then proves that every
// acknowledged record is stored exactly once, offsets are dense, each
// producer's order is kept, nothing read was lost later, committed offsets
// never moved back, and fsck is clean.
//
// Its tests run in `make test` with the CI profile; `make chaos` runs the
// long profile (STREAMBED_CHAOS=long). Runs are seeded: the seed is printed
// and STREAMBED_CHAOS_SEED replays the same fault schedule (goroutine
// interleavings still differ between runs).
package chaos
