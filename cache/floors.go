package cache

// A floor is the revision of a load that read ahead of the watch: the
// bucket already held revision r while the watch had not yet delivered
// revisions below r. Until the watch's position reaches r, a change older
// than the floor is a late delivery, not news, and is ignored. Floors are not
// read on a hit: the load's entry itself is stored in ristretto, after a
// drain when a Set in its shard may still be queued, so that no older queued
// Set can land over it.
//
// When a shard has no room for another floor it keeps one number instead,
// ahead, the highest such revision, and withholds every change without a pin
// or floor below it: those cost a load, never a stale read.

// aheadOfWatch stores e, a load of k at revision rev beyond the watch's
// position, and leaves a floor for it. Callers hold the shard lock.
func (t *table[K, V, S]) aheadOfWatch(k K, hk uint64, sh *shard[K, V], e V, rev uint64) {
	t.floor(k, sh, rev)
	if t.drained.Load() <= sh.setMark {
		t.drain()
	}
	t.store(k, hk, sh, e)
}

func (t *table[K, V, S]) floor(k K, sh *shard[K, V], rev uint64) {
	if f, ok := sh.floors[k]; ok {
		sh.floors[k] = max(f, rev)
		return
	}
	if len(sh.floors) >= t.pinCap {
		t.releaseFloors(sh, t.position.Load())
	}
	if len(sh.floors) < t.pinCap {
		sh.floors[k] = rev
		sh.nfloors.Store(int32(len(sh.floors)))
		t.floored.Add(1)
		t.nudge()
		return
	}
	sh.ahead = max(sh.ahead, rev)
	t.counts.overflows.Add(1)
}

func (t *table[K, V, S]) dropFloor(k K, sh *shard[K, V]) {
	delete(sh.floors, k)
	sh.nfloors.Store(int32(len(sh.floors)))
	t.floored.Add(-1)
}

// releaseFloors drops the floors the watch has passed. Callers hold the
// shard lock.
func (t *table[K, V, S]) releaseFloors(sh *shard[K, V], pos uint64) {
	for k, f := range sh.floors {
		if f <= pos {
			delete(sh.floors, k)
			t.floored.Add(-1)
		}
	}
	sh.nfloors.Store(int32(len(sh.floors)))
	if sh.ahead <= pos {
		sh.ahead = 0
	}
}
