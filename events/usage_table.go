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

// usageTable is the set of keys a UsageRecorder tracks in one interval:
// open addressing over at least twice as many slots as keys, so that Record
// finds a key with no lock and a probe or two.
//
// Record runs on every Check, and in a busy server the table is rarely in
// the processor's cache: each line it touches is a wait on memory. What it
// touches for an allowed request (the hash it compares, first and last use,
// the count of CodeOK, and whether the slot is filled) therefore lies inline
// in the slot, one 64-byte line; the rest of a key's usage, touched by a
// denial or a flush, is in the usageKey the slot numbers.
//
// The slots hold no pointer: a slot names its usageKey by number in keys.
// The garbage collector then never scans the slots, which are most of the
// table (4 MiB at the default bound), at every cycle of a busy server.
//
// Slots are filled only under the recorder's mu, the key's number stored
// last, so that a Record that loads a number reads a complete hash and finds
// its usageKey stored. A flush retires the whole table and goes on with a
// new one: a Record that finds its table retired after counting takes its
// count back and records it in the new table (UsageRecorder.Record).
type usageTable struct {
	slots   []usageSlot
	keys    []atomic.Pointer[usageKey] // numbered from 1 by the slots; one per tracked key
	mask    uint64
	n       int         // filled slots; under the recorder's mu
	retired atomic.Bool // set by the flush that replaced this table
}

// usageSlot is one tracked key's hot part: 64 bytes and no pointer
// (usage_table_test.go checks both). A table's slots array is larger than
// 32 KiB, so the allocator starts it on a page boundary and every slot on a
// line of its own.
type usageSlot struct {
	hash  authz.KeyHash
	first atomic.Int64  // Unix ns of the first use in this table; 0: none yet
	last  atomic.Int64  // Unix ns of the last use, to lastSeenPrecision
	ok    atomic.Uint64 // uses answered CodeOK
	key   atomic.Uint32 // the usageKey's number in the table's keys; 0: the slot is empty
	_     uint32
}

// usageKey is the rest of a tracked key: what names it in a summary, and
// the uses answered with any other code than CodeOK, which is the last code.
type usageKey struct {
	keyID, accountID string
	denied           [numCodes - 1]atomic.Uint64 // by code
	idle             int                         // intervals in a row without a use; under the recorder's mu
}

func newUsageTable(maxKeys int) *usageTable {
	size := 2
	for size < 2*maxKeys {
		size <<= 1
	}
	return &usageTable{slots: make([]usageSlot, size), keys: make([]atomic.Pointer[usageKey], maxKeys), mask: uint64(size - 1)}
}

// find returns h's slot, or nil when h is not tracked. At least half the
// slots are empty, so the probe ends.
func (t *usageTable) find(h authz.KeyHash) *usageSlot {
	for i := binary.LittleEndian.Uint64(h[:8]) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.key.Load() == 0 {
			return nil
		}
		if sameHash(&s.hash, &h) {
			return s
		}
	}
}

// sameHash reports whether a and b are equal, a word at a time: unlike ==
// on the arrays, which calls the runtime's memequal, it is inlined.
func sameHash(a, b *authz.KeyHash) bool {
	le := binary.LittleEndian
	return le.Uint64(a[0:]) == le.Uint64(b[0:]) && le.Uint64(a[8:]) == le.Uint64(b[8:]) &&
		le.Uint64(a[16:]) == le.Uint64(b[16:]) && le.Uint64(a[24:]) == le.Uint64(b[24:])
}

// insert fills a slot for h, which t does not hold, and returns it; the
// caller holds the recorder's mu and has checked that t has room
// (t.n < len(t.keys)).
func (t *usageTable) insert(h authz.KeyHash, k *usageKey) *usageSlot {
	for i := binary.LittleEndian.Uint64(h[:8]) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.key.Load() == 0 {
			t.keys[t.n].Store(k)
			t.n++
			s.hash = h
			s.key.Store(uint32(t.n)) // publishes the hash and the usageKey
			return s
		}
	}
}

// keyOf returns the usageKey of s, a filled slot of t.
func (t *usageTable) keyOf(s *usageSlot) *usageKey {
	return t.keys[s.key.Load()-1].Load()
}

// counter is where s, a slot of t, counts the uses answered with code.
func (t *usageTable) counter(s *usageSlot, code authz.Code) *atomic.Uint64 {
	if code == authz.CodeOK {
		return &s.ok
	}
	return &t.keyOf(s).denied[code]
}

// record counts n uses of s at ns on c, one of s's counters.
func (s *usageSlot) record(c *atomic.Uint64, ns int64, n uint64) {
	for f := s.first.Load(); f == 0 || ns < f; f = s.first.Load() { // rarely true: no write
		if s.first.CompareAndSwap(f, ns) {
			break
		}
	}
	c.Add(n)
	if ns-s.last.Load() >= int64(lastSeenPrecision) {
		s.last.Store(ns)
	}
}

// used reports whether s, a slot of t, counted a use, without taking it.
func (t *usageTable) used(s *usageSlot) bool {
	if s.ok.Load() > 0 || s.first.Load() != 0 {
		return true
	}
	k := t.keyOf(s)
	for i := range k.denied {
		if k.denied[i].Load() > 0 {
			return true
		}
	}
	return false
}

// drain takes the uses of s, a slot of t; used is false when there was none.
func (t *usageTable) drain(s *usageSlot, replica string) (u KeyUsage, used bool) {
	first := s.first.Swap(0)
	k := t.keyOf(s)
	counts := make(map[string]uint64, 2)
	for c := range numCodes {
		if n := t.counter(s, authz.Code(c)).Swap(0); n > 0 {
			counts[authz.Code(c).String()] = n
		}
	}
	if len(counts) == 0 {
		return KeyUsage{}, false
	}
	last := max(s.last.Load(), first)
	if first == 0 { // a use counted before its first was set: a race with this drain
		first = last
	}
	return KeyUsage{
		KeyID: k.keyID, AccountID: k.accountID, KeyHash: s.hash.String(),
		FirstSeen: time.Unix(0, first).UTC(), LastSeen: time.Unix(0, last).UTC(),
		Counts: counts, Replica: replica,
	}, true
}
