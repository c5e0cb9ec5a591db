package events

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
)

// lastSeenPrecision is how fresh a tracked last_seen is kept: storing it at
// most once a millisecond per key keeps Record to one atomic write.
const lastSeenPrecision = time.Millisecond

// usageTable is the set of keys a UsageRecorder tracks: open addressing over
// twice as many slots as keys, so that Record finds a key with no lock and
// a probe or two. Entries are only added (under the recorder's mu); a flush
// builds the next table from the entries used in its interval.
type usageTable struct {
	slots []atomic.Pointer[usageEntry]
	mask  uint64
	n     int // entries; under the recorder's mu
}

// usageEntry is one tracked key. Its counters are drained by each flush.
//
// Record runs on every Check, so its fields are laid out for the cache: what
// Record reads and writes for an allowed request (the hash it compares, first,
// last, retired and the count of CodeOK) lies in the first 64 bytes, and the
// entry is padded to 192 bytes, a size class whose objects start on a 64-byte
// boundary. Counts are kept in reverse code order for that (countIndex).
type usageEntry struct {
	hash  authz.KeyHash
	first atomic.Int64 // Unix ns of the first use since the last flush; 0: none yet
	last  atomic.Int64 // Unix ns of the last use, to lastSeenPrecision
	// retired is set when a flush drops the entry from the table; a Record
	// that finds it set moves its count to the key's live entry.
	retired          atomic.Bool
	counts           [numCodes]atomic.Uint64 // by countIndex
	keyID, accountID string
	idle             int // intervals in a row without a use; under the recorder's mu
	_                [usageEntryPad]byte
}

// usageEntryPad fills a usageEntry up to 192 bytes (usage_table_test.go
// checks the layout).
const usageEntryPad = 32

// countIndex is where code's count is in usageEntry.counts: CodeOK, the
// most frequent, first, beside the fields Record touches anyway.
func countIndex(code authz.Code) int { return numCodes - 1 - int(code) }

func newUsageTable(maxKeys int) *usageTable {
	size := 2
	for size < 2*maxKeys {
		size <<= 1
	}
	return &usageTable{slots: make([]atomic.Pointer[usageEntry], size), mask: uint64(size - 1)}
}

// find returns h's entry, or nil when h is not tracked. At least half the
// slots are empty, so the probe ends.
func (t *usageTable) find(h authz.KeyHash) *usageEntry {
	for i := binary.LittleEndian.Uint64(h[:8]) & t.mask; ; i = (i + 1) & t.mask {
		if e := t.slots[i].Load(); e == nil || sameHash(&e.hash, &h) {
			return e
		}
	}
}

// sameHash reports whether a and b are equal, a word at a time: unlike ==
// on the arrays, which calls the runtime's memequal, it is inlined, and find
// runs on every Check.
func sameHash(a, b *authz.KeyHash) bool {
	le := binary.LittleEndian
	return le.Uint64(a[0:]) == le.Uint64(b[0:]) && le.Uint64(a[8:]) == le.Uint64(b[8:]) &&
		le.Uint64(a[16:]) == le.Uint64(b[16:]) && le.Uint64(a[24:]) == le.Uint64(b[24:])
}

// insert adds e, which t does not hold; the caller holds the recorder's mu.
func (t *usageTable) insert(e *usageEntry) {
	for i := binary.LittleEndian.Uint64(e.hash[:8]) & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].Load() == nil {
			t.slots[i].Store(e)
			t.n++
			return
		}
	}
}

// record counts n uses of e at ns with code. It reports false when e is
// retired: the caller then takes back what the retired entry still holds of
// code (Swap, so that neither it nor the flush counts a use twice) and
// records it on the key's live entry.
func (e *usageEntry) record(code authz.Code, ns int64, n uint64) bool {
	for f := e.first.Load(); f == 0 || ns < f; f = e.first.Load() { // rarely true: no write
		if e.first.CompareAndSwap(f, ns) {
			break
		}
	}
	e.counts[countIndex(code)].Add(n)
	if ns-e.last.Load() >= int64(lastSeenPrecision) {
		e.last.Store(ns)
	}
	return !e.retired.Load()
}

// drain takes e's use since the last drain; used is false when there was none.
func (e *usageEntry) drain(replica string) (s KeyUsage, used bool) {
	first := e.first.Swap(0)
	counts := make(map[string]uint64, 2)
	for c := range numCodes {
		if n := e.counts[countIndex(authz.Code(c))].Swap(0); n > 0 {
			counts[authz.Code(c).String()] = n
		}
	}
	if len(counts) == 0 {
		return KeyUsage{}, false
	}
	last := max(e.last.Load(), first)
	if first == 0 { // a use counted before its first was set: a race with this drain
		first = last
	}
	return KeyUsage{
		KeyID: e.keyID, AccountID: e.accountID, KeyHash: e.hash.String(),
		FirstSeen: time.Unix(0, first).UTC(), LastSeen: time.Unix(0, last).UTC(),
		Counts: counts, Replica: replica,
	}, true
}
