package testkit

import (
	"testing"
	"time"
)

// pollEvery is how often Poll asks its condition again.
const pollEvery = 5 * time.Millisecond

// Eventually polls cond until it holds, and fails the test naming what when
// within passes first.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(within, cond) {
		tb.Fatalf("not within %s: %s", within, what)
	}
}

// Poll reports whether cond held before within passed, asking it every few
// milliseconds; cond is asked at least once.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}
