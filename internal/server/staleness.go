package server

import (
	"sync/atomic"
	"time"
)

// readinessGrace is how long a lost watch may stay lost before policy deny
// reports not ready, so that a NATS reconnect (a rolling restart of the NATS
// cluster) does not flap readiness.
const readinessGrace = 2 * time.Second

// staleness applies the staleness policy. Cached states are trusted while
// the watch is live, and for max after it was last live; past that they are
// stale (the footstep_authz_stale alarm). Policy deny then answers 503 to
// every lookup (Fresh is false); policy serve keeps answering from them.
//
// Readiness: with deny, the process reports not ready once the watch has
// been lost for readinessGrace (or max, if shorter), so that traffic moves
// to replicas that are live; requests that still arrive get cached states
// until max, then 503. With serve, readiness is kept through the outage:
// taking every replica out of rotation would defeat the policy.
//
// Before the first full sync, a connected watch counts as live: lookups then
// go to the bucket, which is fresh. update runs on the health loop; Fresh
// reads one atomic, since every Check asks it.
type staleness struct {
	max   time.Duration
	serve bool
	now   func() time.Time
	live  func() bool
	last  atomic.Int64 // unix nanoseconds when last seen live
	stale atomic.Bool
}

func newStaleness(max time.Duration, policy string, live func() bool, now func() time.Time) *staleness {
	s := &staleness{max: max, serve: policy == StaleServe, now: now, live: live}
	s.last.Store(now().UnixNano())
	return s
}

// update samples the watch; call it often (healthInterval).
func (s *staleness) update() {
	now := s.now()
	if s.live() {
		s.last.Store(now.UnixNano())
	}
	s.stale.Store(now.Sub(time.Unix(0, s.last.Load())) > s.max)
}

// Fresh reports whether lookups may be answered from cached states; it
// implements envoy.Freshness.
func (s *staleness) Fresh() bool { return s.serve || !s.stale.Load() }

// Stale reports whether the cached states are older than the limit, whatever
// the policy: the alarm.
func (s *staleness) Stale() bool { return s.stale.Load() }

// Age returns how long the watch has not been live; zero while it is.
func (s *staleness) Age() time.Duration {
	if s.live() {
		return 0
	}
	return max(s.now().Sub(time.Unix(0, s.last.Load())), 0)
}

// blocksReadiness reports whether the policy takes the process out of
// rotation now.
func (s *staleness) blocksReadiness() bool {
	return !s.serve && s.Age() > min(readinessGrace, s.max)
}
