package events

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
)

// guard is what a watcher knows of a key that is revoked for good: two
// revisions, so that holding every revoked key costs little.
type guard struct {
	keyRev  uint64 // revision of the last put of key.<hash> seen since the guard began; 0 when none
	tombRev uint64 // revision of the key's tombstone; 0 when none is known
	// tombRemoved is set when the key's tombstone was removed after its
	// record was seen revoked, and no tombstone or revoked record came since.
	// Publisher.DeleteKey removes the record, then the tombstone; a put made
	// right after supersedes the record's delete marker, which a watch that
	// had not read it then never sees. A put that comes now is a new key
	// (terminal_apply.go).
	tombRemoved bool
}

// at returns the revision at which the key became terminal, as far as known.
func (g guard) at() uint64 {
	if g.tombRev != 0 && (g.keyRev == 0 || g.tombRev < g.keyRev) {
		return g.tombRev
	}
	return g.keyRev
}

// terminal is a watcher's knowledge of revoked keys and tombstones, rebuilt
// from the bucket on every full sync. Only apply and resetSink change it,
// under the watcher's mu, and they change guards under t.mu too, so that
// they may read guards without it. Store reads it through Watcher.Revoked,
// and the watcher's bucket writes check it before writing.
type terminal struct {
	mu      sync.RWMutex
	guards  map[authz.KeyHash]guard
	through uint64 // every change up to this revision is applied; under mu

	// contested holds the keys with live changes kept while the index is
	// being built (build.go): the bucket writes for them wait until then.
	contested map[authz.KeyHash]struct{} // under mu

	// Guarded by the watcher's mu alone.
	deleted map[authz.KeyHash]struct{} // keys whose last entry seen is a delete or purge marker
	// expiring holds the expires_at of each key whose last put seen carries
	// one (expiry.go).
	expiring map[authz.KeyHash]time.Time

	epoch  atomic.Uint64 // bumped by reset: a bucket write of an older epoch is dropped
	writes writeQueue    // the watcher's bucket writes (terminal_writes.go)
}

func newTerminal() *terminal {
	return &terminal{
		guards:    make(map[authz.KeyHash]guard),
		contested: make(map[authz.KeyHash]struct{}),
		deleted:   make(map[authz.KeyHash]struct{}),
		expiring:  make(map[authz.KeyHash]time.Time),
	}
}

func (t *terminal) set(h authz.KeyHash, g guard) {
	t.mu.Lock()
	t.guards[h] = g
	t.mu.Unlock()
}

func (t *terminal) drop(h authz.KeyHash) {
	t.mu.Lock()
	delete(t.guards, h)
	t.mu.Unlock()
}

// advance records that every change up to rev is applied.
func (t *terminal) advance(rev uint64) {
	t.mu.Lock()
	t.through = max(t.through, rev)
	t.mu.Unlock()
}

// reset forgets everything, for a full resync.
func (t *terminal) reset() {
	t.mu.Lock()
	clear(t.guards)
	clear(t.contested)
	t.through = 0
	t.mu.Unlock()
	clear(t.deleted)
	clear(t.expiring)
	t.epoch.Add(1)
}

// lookup answers Watcher.Revoked.
func (t *terminal) lookup(h authz.KeyHash, rev uint64) (at uint64, revoked, known bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if rev > t.through {
		return 0, false, false
	}
	g, ok := t.guards[h]
	return g.at(), ok, true
}

// current returns the guard of h, for a bucket write deciding whether it is
// still needed; ok is false after a reset of another epoch, and while h has
// live changes kept during an index build (they decide at its end).
func (t *terminal) current(h authz.KeyHash, epoch uint64) (g guard, guarded, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g, guarded = t.guards[h]
	_, contested := t.contested[h]
	return g, guarded, t.epoch.Load() == epoch && !contested
}

// sameEpoch reports whether no reset came since epoch.
func (t *terminal) sameEpoch(epoch uint64) bool { return t.epoch.Load() == epoch }

// contest holds back the bucket writes decided for h until uncontest.
func (t *terminal) contest(h authz.KeyHash) {
	t.mu.Lock()
	t.contested[h] = struct{}{}
	t.mu.Unlock()
}

func (t *terminal) uncontest() {
	t.mu.Lock()
	clear(t.contested)
	t.mu.Unlock()
}

// factsOf returns a terminal holding only what t holds of h, for a dry run
// of the rules. Callers hold the watcher's mu.
func (t *terminal) factsOf(h authz.KeyHash) *terminal {
	f := &terminal{guards: make(map[authz.KeyHash]guard, 1), deleted: make(map[authz.KeyHash]struct{}, 1),
		expiring: make(map[authz.KeyHash]time.Time, 1)}
	if g, ok := t.guards[h]; ok {
		f.guards[h] = g
	}
	if _, ok := t.deleted[h]; ok {
		f.deleted[h] = struct{}{}
	}
	if at, ok := t.expiring[h]; ok {
		f.expiring[h] = at
	}
	return f
}

// Revoked implements WatchIndex: it reports whether the watcher holds h as
// revoked for good, knowing every change up to revision rev. Until the first
// full sync, during a resync, while the index is being built after a lazy
// start, and for revisions the watch has not delivered yet, known is false.
func (w *Watcher) Revoked(h authz.KeyHash, rev uint64) (at uint64, revoked, known bool) {
	return w.terminal.lookup(h, rev)
}

var _ WatchIndex = (*Watcher)(nil)
