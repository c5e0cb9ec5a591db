package events

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
)

// keyIndex is the set of key hashes whose record exists in the bucket, as
// 8-byte fingerprints (the first 8 bytes of the SHA-256, already uniform),
// built from the watch without holding values: about 16 bytes a key. A key
// whose fingerprint is absent certainly has no record; two keys sharing a
// fingerprint only cost the second a lookup. A deletion does not remove its
// fingerprint, which another key may share: a deleted key costs a lookup
// again, never a wrong answer, until the next full resync rebuilds the set.
// It is complete once a full replay has caught up, and incomplete again
// during a resync.
type keyIndex struct {
	mu       sync.RWMutex
	set      map[uint64]struct{}
	complete atomic.Bool
}

func newKeyIndex() *keyIndex { return &keyIndex{set: make(map[uint64]struct{})} }

func fingerprint(h authz.KeyHash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

func (ix *keyIndex) add(h authz.KeyHash) {
	ix.mu.Lock()
	ix.set[fingerprint(h)] = struct{}{}
	ix.mu.Unlock()
}

func (ix *keyIndex) reset() {
	ix.complete.Store(false)
	ix.mu.Lock()
	clear(ix.set)
	ix.mu.Unlock()
}

func (ix *keyIndex) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.set)
}

// mayExist reports whether h may have a record: true while the index is
// incomplete, and for any fingerprint it holds.
func (ix *keyIndex) mayExist(h authz.KeyHash) bool {
	if !ix.complete.Load() {
		return true
	}
	ix.mu.RLock()
	_, ok := ix.set[fingerprint(h)]
	ix.mu.RUnlock()
	return ok
}

// indexFreshFor is how recent the proof that the watch is current must be
// for the index to rule a key out: while JetStream does not answer, a key
// created meanwhile would be missing, so misses go to the bucket instead
// (and fail closed, 503, when it cannot be read).
const indexFreshFor = time.Second

// MayExist reports whether a record of the key with hash h may exist: false
// only when the watcher has replayed the whole bucket, its watch is caught
// up and connected, JetStream confirmed within indexFreshFor that the watch
// is current, and the index holds no key
// with h's fingerprint, so that a well-formed key nobody created is answered
// without a lookup. A key created a moment ago is in the index before its
// change reaches the sink.
func (w *Watcher) MayExist(h authz.KeyHash) bool {
	if !w.Synced() || time.Since(w.FreshAt()) > indexFreshFor {
		return true // not caught up and connected right now: let the bucket answer
	}
	return w.index.mayExist(h)
}

// IndexedKeys returns how many key fingerprints the index holds, and whether
// it is complete.
func (w *Watcher) IndexedKeys() (n int, complete bool) {
	return w.index.len(), w.index.complete.Load()
}
