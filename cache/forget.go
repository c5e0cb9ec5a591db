package cache

import "github.com/footstep/authz/authz"

// A watch may start from the bucket's current position instead of replaying
// it (a lazy start): the store then starts empty and loads every key on
// demand. StartAt empties it and tells it where the watch starts, and
// ForgetKeys removes keys whose change the watch applies without stating
// their new state (it may depend on history the watch has not read yet):
// the next read loads them.

// StartAt empties the store and tells it that the watch starts after
// revision rev: every revision up to rev counts as delivered, so a load
// that reads one is stored without a floor (floors.go). No change up to rev
// will be applied, so nothing loaded before the start may stay: misses
// load before any watch runs, and while a watch that has applied nothing
// is lost, and a change up to rev may have outdated what they read (a key
// allowed for good after its deletion, seen in TestFaultSchedule). Every
// entry goes, and a load in flight loads again, as after Reset, without
// counting as one.
func (s *Store) StartAt(rev uint64) {
	s.keys.forgetAll()
	s.accounts.forgetAll()
	s.keys.advance(rev)
	s.accounts.advance(rev)
}

// ForgetKeys removes the keys hs, whose state changed at revision rev or
// before in a way the watch does not state, so that the next read of each
// loads it. A load of one of them in flight is not cached and is read again.
// It returns once ristretto can no longer show a removed entry.
func (s *Store) ForgetKeys(rev uint64, hs ...authz.KeyHash) { s.keys.forget(rev, hs) }

func (t *table[K, V, S]) forget(rev uint64, ks []K) {
	t.advance(rev)
	for _, k := range ks {
		t.forgetOne(k, rev)
	}
	// A Set queued before a Del lands before it: once drained, neither shows.
	t.drain()
}

func (t *table[K, V, S]) forgetOne(k K, rev uint64) {
	hk, sh, open := t.lockKey(k, &t.counts.forgotten)
	if !open {
		return
	}
	defer sh.mu.Unlock()
	if c, ok := sh.inflight[k]; ok {
		c.forgotten = true
	}
	t.hide(k, hk, sh, rev)
}

// hide removes k from ristretto and pins it hidden: until a drain shows that
// no Set queued before the Del can land, reads of k miss instead of finding
// such a Set, which holds the state the change replaced. A shard without
// room for the pin has drained after the Del (room), so nothing can land.
// Callers hold the shard lock.
func (t *table[K, V, S]) hide(k K, hk uint64, sh *shard[K, V], rev uint64) {
	t.rc.Del(hk)
	p, had := sh.pins[k]
	if !had && !t.room(sh) {
		return
	}
	t.setPin(k, sh, pin[V]{rev: max(rev, p.rev), hidden: true}, had)
}
