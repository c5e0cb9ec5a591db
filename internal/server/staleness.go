package server

import (
	"sync/atomic"
	"time"
)

// readinessGrace is how long a lost watch may stay lost before policy deny
// reports not ready, so that a NATS reconnect (a rolling restart of the NATS
// cluster) does not flap readiness.
const readinessGrace = 2 * time.Second

// staleness applies the staleness policy. The cached states are as fresh as
// the last proof that they are current: a stream answer, from a leader in
// touch with a quorum, showing nothing the watch had not applied
// (events.Watcher.FreshAt). A live client connection proves nothing: a NATS
// server cut off from JetStream keeps its clients. Past max without such a
// proof the states are stale (the footstep_authz_stale alarm): policy deny
// then answers 503 to every lookup (Fresh is false); policy serve keeps
// answering from them.
//
// Readiness: with deny, the process reports not ready once the proof is
// older than readinessGrace (or max, if shorter), so that traffic moves to
// replicas that are current; requests that still arrive get cached states
// until max, then 503. With serve, readiness is kept through the outage:
// taking every replica out of rotation would defeat the policy.
//
// Before the first full sync nothing is cached; misses read the stream
// leader, so the age counts from the last time JetStream answered. update
// runs on the health loop; Fresh reads one atomic, since every Check asks it.
type staleness struct {
	max     time.Duration
	serve   bool
	now     func() time.Time
	source  freshSource
	started time.Time
	stale   atomic.Bool
}

// freshSource says how current the cached states are (an *events.Watcher).
type freshSource interface {
	FreshAt() time.Time
	LastContact() time.Time
}

func newStaleness(max time.Duration, policy string, src freshSource, now func() time.Time) *staleness {
	return &staleness{max: max, serve: policy == StaleServe, now: now, source: src, started: now()}
}

// update re-evaluates the alarm; call it often (healthInterval).
func (s *staleness) update() { s.stale.Store(s.Age() > s.max) }

// Fresh reports whether lookups may be answered from cached states; it
// implements envoy.Freshness.
func (s *staleness) Fresh() bool { return s.serve || !s.stale.Load() }

// Stale reports whether the cached states are older than the limit, whatever
// the policy: the alarm.
func (s *staleness) Stale() bool { return s.stale.Load() }

// Age returns how old the last proof of freshness is.
func (s *staleness) Age() time.Duration {
	at := s.source.FreshAt()
	if at.IsZero() { // before the first full sync
		at = s.source.LastContact()
		if at.Before(s.started) {
			at = s.started
		}
	}
	return max(s.now().Sub(at), 0)
}

// blocksReadiness reports whether the policy takes the process out of
// rotation now.
func (s *staleness) blocksReadiness() bool {
	return !s.serve && s.Age() > min(readinessGrace, s.max)
}
