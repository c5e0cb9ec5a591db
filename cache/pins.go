package cache

// A pin is a change from the watch kept outside ristretto, readable, until
// ristretto has caught up with it. Reads consult a shard's pins before
// ristretto whenever the shard has any, which is for a millisecond or two
// after a change.
//
// Taking a pin issues a Del of the key, which removes it at once and cancels
// any older Set still queued in ristretto's buffer, then a Set of the new
// state if the key was cached. A Set queued before the Del may still land
// for a moment before the Del is processed: the pin hides it. The pin is
// released once a drain (ristretto's Wait) shows both were processed, so
// that ristretto holds the pinned state or nothing.
//
// A hidden pin (forget.go) holds no state: it hides ristretto the same way
// for a key removed without a new state, and the key's reads load it.
type pin[V any] struct {
	entry  V
	rev    uint64
	mark   uint64 // the drain cycle current when its Del and Set were issued
	stored bool   // the entry was handed to ristretto
	hidden bool   // no entry: reads miss, and loads replace the pin
}

// apply records a change from the watch. A change older than the key's pin,
// its floor (floors.go) or the revision ristretto holds is ignored. A change
// the cache cannot prove newer than every read of the key (one that came out
// of order, or one in a shard that read ahead of the watch without a floor)
// is withheld: the key is removed and the next read loads it.
func (t *table[K, V, S]) apply(k K, e V) {
	rev := t.revision(e)
	hk, sh, open := t.lockKey(k, &t.counts.applied)
	if !open {
		return
	}
	defer sh.mu.Unlock()
	pos := t.advance(rev)
	if c, ok := sh.inflight[k]; ok {
		c.applied = max(c.applied, rev)
	}
	if p, ok := sh.pins[k]; ok {
		if p.rev > rev {
			t.counts.staleChanges.Add(1)
			return
		}
		t.hold(k, hk, sh, e, p.stored || !p.hidden && t.present(hk))
		return
	}
	f, floored := sh.floors[k]
	if floored && f > rev {
		t.counts.staleChanges.Add(1)
		return
	}
	if rev < pos || rev < sh.ahead || !t.hold(k, hk, sh, e, t.present(hk)) {
		t.withhold(k, hk, sh, rev)
		return
	}
	if floored {
		t.dropFloor(k, sh)
	}
}

// advance moves the watch's position to rev if it is further, and returns
// the position before.
func (t *table[K, V, S]) advance(rev uint64) uint64 {
	for {
		pos := t.position.Load()
		if rev <= pos || t.position.CompareAndSwap(pos, rev) {
			return pos
		}
	}
}

// present reports whether ristretto holds something for hk, without counting
// a read: a change is stored again only where the key was cached.
func (t *table[K, V, S]) present(hk uint64) bool {
	_, ok := t.rc.GetTTL(hk)
	return ok
}

// hold pins e as the newest state of k and replaces k in ristretto, storing
// e when store is set. It reports false, and changes nothing, when the shard
// has no room for another pin. Callers hold the shard lock.
func (t *table[K, V, S]) hold(k K, hk uint64, sh *shard[K, V], e V, store bool) bool {
	_, had := sh.pins[k]
	if !had && !t.room(sh) {
		return false
	}
	t.rc.Del(hk)
	if store {
		t.store(k, hk, sh, e)
	}
	t.setPin(k, sh, pin[V]{entry: e, rev: t.revision(e), stored: store}, had)
	return true
}

// setPin pins p for k, marked with the current drain cycle, and counts it
// when k had no pin, waking the janitor to release it. Callers hold the
// shard lock and have issued k's Del.
func (t *table[K, V, S]) setPin(k K, sh *shard[K, V], p pin[V], had bool) {
	p.mark = t.cycles.Load()
	sh.pins[k] = p
	if !had {
		sh.npins.Store(int32(len(sh.pins)))
		t.pinned.Add(1)
		t.nudge()
	}
}

// room reports whether the shard can take another pin, draining ristretto
// and releasing what it can when the shard is full.
func (t *table[K, V, S]) room(sh *shard[K, V]) bool {
	if len(sh.pins) < t.pinCap {
		return true
	}
	t.drain()
	t.release(sh)
	if len(sh.pins) < t.pinCap {
		return true
	}
	t.counts.overflows.Add(1)
	return false
}

// withhold removes k from ristretto for a change that is not shown, unless
// ristretto holds a revision at least as new. The drain makes sure no older
// Set queued before the Del lands after it.
func (t *table[K, V, S]) withhold(k K, hk uint64, sh *shard[K, V], rev uint64) {
	if s, ok := t.rc.Get(hk); ok {
		if st := s.stamped(); sh.holds(st.epoch) && st.rev >= rev {
			if _, mine := t.unpack(k, s); mine {
				t.counts.staleChanges.Add(1)
				return
			}
		}
	}
	t.rc.Del(hk)
	t.drain()
	t.counts.withheld.Add(1)
}

// drain waits until ristretto has processed every Set and Del issued before
// it started.
func (t *table[K, V, S]) drain() {
	c := t.cycles.Add(1)
	t.rc.Wait()
	for {
		d := t.drained.Load()
		if d >= c || t.drained.CompareAndSwap(d, c) {
			break
		}
	}
	t.counts.drains.Add(1)
}

// release drops the pins of sh that ristretto has caught up with, and the
// floors the watch has passed. Callers hold the shard lock.
func (t *table[K, V, S]) release(sh *shard[K, V]) {
	drained, pos := t.drained.Load(), t.position.Load()
	for k, p := range sh.pins {
		if p.mark < drained {
			delete(sh.pins, k)
			t.pinned.Add(-1)
			if p.rev > pos { // a load ahead of the watch replaced the change
				t.floor(k, sh, p.rev)
			}
		}
	}
	sh.npins.Store(int32(len(sh.pins)))
	t.releaseFloors(sh, pos)
}

// tidy drains ristretto and releases what it can, for the janitor. It
// reports whether anything is left for a later call.
func (t *table[K, V, S]) tidy() bool {
	if t.unsettled.Swap(false) || t.pinned.Load() > 0 {
		t.drain()
	}
	if t.pinned.Load() == 0 && t.floored.Load() == 0 {
		return t.unsettled.Load()
	}
	for i := range t.shards {
		sh := &t.shards[i]
		if sh.npins.Load() == 0 && sh.nfloors.Load() == 0 {
			continue
		}
		sh.mu.Lock()
		t.release(sh)
		sh.mu.Unlock()
	}
	return true
}

// reset forgets everything, for a full resynchronisation: revisions start
// over. Loads in flight find their shard reset and load again. The watch
// calls it between changes, never during one.
func (t *table[K, V, S]) reset() {
	t.forgetAll()
	t.counts.resets.Add(1)
}

// forgetAll is reset without counting a resync: every entry, pin and floor
// goes, the position goes back to 0, and loads in flight find their shard
// reset and load again.
func (t *table[K, V, S]) forgetAll() {
	t.position.Store(0)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		t.pinned.Add(-int64(len(sh.pins)))
		t.floored.Add(-int64(len(sh.floors)))
		clear(sh.pins)
		clear(sh.floors)
		sh.npins.Store(0)
		sh.nfloors.Store(0)
		sh.ahead = 0
		for _, c := range sh.inflight {
			c.applied = 0
		}
		sh.resets.Add(1) // a new epoch: every entry stored before is forgotten
		sh.mu.Unlock()
	}
}
