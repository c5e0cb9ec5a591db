package events

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
)

// keyIndex is, for every KV key the watch applied since the last full sync,
// the revision of its last change, under a 64-bit fingerprint: 13 to 16
// bytes a KV key in fpTables, values never held. It answers two questions:
//
//   - Membership. A key whose fingerprint is absent certainly has no record
//     (once the index is complete); two keys sharing a fingerprint only cost
//     the second a lookup. A deletion keeps its fingerprint, which another
//     key may share: a deleted key costs a lookup again, never a wrong
//     answer, until the next full resync rebuilds the index.
//   - Revision floors. A read of a KV key from the bucket that is older than
//     the revision the watch already applied came from a server behind the
//     watch (a stream leader being replaced, say): the Loader does not take
//     it as the key's state. A collision can only raise a floor, which makes
//     a read retried, never a stale one accepted.
//
// The fingerprint of a key record is the first 8 bytes of its SHA-256,
// already uniform; a tombstone's is the same bytes mixed with a constant; any
// other KV key's is its maphash. The index is complete once a full replay has
// caught up, and incomplete again during a resync.
type keyIndex struct {
	mu       sync.RWMutex
	revs     [indexShards]fpTable // by the fingerprint's low byte
	keys     int                  // fingerprints first added by a key record
	seed     maphash.Seed
	complete atomic.Bool
}

// indexShards splits the index's table, so that a growth rehashes a 256th
// of it, with readers waiting: at 10M records one table took 150 to 180 ms.
// A table finds a slot by the fingerprint's high bits, a shard by its low.
const indexShards = 256

func (ix *keyIndex) table(fp uint64) *fpTable { return &ix.revs[fp%indexShards] }

func newKeyIndex() *keyIndex {
	return &keyIndex{seed: maphash.MakeSeed()}
}

func fingerprint(h authz.KeyHash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// tombstoneMix sets tombstones' fingerprints apart from their keys'.
const tombstoneMix = 0x9e3779b97f4a7c15

// fingerprintOf returns the fingerprint of a parsed KV key, and whether it
// is a key record's.
func (ix *keyIndex) fingerprintOf(k KVKey, name string) (fp uint64, isKey bool) {
	switch k.Kind {
	case KindKey:
		return fingerprint(k.Hash), true
	case KindTombstone:
		return fingerprint(k.Hash) ^ tombstoneMix, false
	case KindAccount:
		return ix.accountFingerprint(k.AccountID), false
	}
	return maphash.String(ix.seed, name), false
}

func (ix *keyIndex) accountFingerprint(id string) uint64 {
	return maphash.String(ix.seed, id)
}

// record notes that revision rev of the KV key with fingerprint fp was
// applied.
func (ix *keyIndex) record(fp uint64, isKey bool, rev uint64) {
	ix.mu.Lock()
	if ix.table(fp).raise(fp, rev) && isKey {
		ix.keys++
	}
	ix.mu.Unlock()
}

// floor returns the last revision applied under fp; 0 when none was.
func (ix *keyIndex) floor(fp uint64) uint64 {
	ix.mu.RLock()
	rev, _ := ix.table(fp).get(fp)
	ix.mu.RUnlock()
	return rev
}

func (ix *keyIndex) reset() {
	ix.complete.Store(false)
	ix.mu.Lock()
	for i := range ix.revs {
		ix.revs[i].reset()
	}
	ix.keys = 0
	ix.mu.Unlock()
}

// len returns how many KV keys, and how many key records among them, the
// index holds.
func (ix *keyIndex) len() (all, keys int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for i := range ix.revs {
		all += ix.revs[i].len()
	}
	return all, ix.keys
}

// bytes returns the size of the index's table.
func (ix *keyIndex) bytes() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var n int64
	for i := range ix.revs {
		n += ix.revs[i].bytes()
	}
	return n
}

// mayExist reports whether h may have a record: true while the index is
// incomplete, and for any fingerprint it holds.
func (ix *keyIndex) mayExist(h authz.KeyHash) bool {
	if !ix.complete.Load() {
		return true
	}
	ix.mu.RLock()
	fp := fingerprint(h)
	_, ok := ix.table(fp).get(fp)
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

// Floor implements WatchIndex: the revision of the last change of the
// record at kvKey the watch applied since the last full sync (or of another
// record sharing its fingerprint); 0 when none.
func (w *Watcher) Floor(kvKey string) uint64 {
	fp, _ := w.index.fingerprintOf(ParseKVKey(kvKey), kvKey)
	return w.index.floor(fp)
}

// IndexBytes returns the memory the index's table holds: it keeps its size
// across a resync, which empties it.
func (w *Watcher) IndexBytes() int64 { return w.index.bytes() }

// IndexedKeys returns how many key fingerprints the index holds, and whether
// it is complete.
func (w *Watcher) IndexedKeys() (n int, complete bool) {
	_, n = w.index.len()
	return n, w.index.complete.Load()
}
