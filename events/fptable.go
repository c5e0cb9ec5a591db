package events

import (
	"math"
	"math/bits"
)

// fpTable maps 64-bit fingerprints to revisions, for the key index: open
// addressing with linear probing over two arrays, the fingerprints and their
// revisions, 32 bits each while every revision fits (12 bytes a slot), 64
// once one does not (16). It grows by a fifth when nine slots in ten are
// taken, so that it stays 75% to 90% full: 13.3 to 16 bytes a record,
// where a Go map took 24 to 38. Growing rehashes every slot, about six
// moves a record over the table's life, and holds both arrays for the
// moment it takes.
//
// The zero fingerprint, which marks an empty slot, is kept aside. The
// fingerprints are uniform (SHA-256 or maphash bytes), so a slot is found by
// scaling the fingerprint to the table's length, with no second hash. Not
// safe for concurrent use.
type fpTable struct {
	fps     []uint64 // 0 marks an empty slot
	revs32  []uint32 // the revisions, while all fit 32 bits
	revs64  []uint64 // the revisions, once one did not (revs32 is then nil)
	used    int      // slots taken
	zero    bool     // fingerprint 0 is held, in zeroRev
	zeroRev uint64
}

// minFPSlots is the length of a table's first arrays.
const minFPSlots = 64

// home is where fp's probe starts: fp scaled to [0, len(t.fps)).
func (t *fpTable) home(fp uint64) int {
	hi, _ := bits.Mul64(fp, uint64(len(t.fps)))
	return int(hi)
}

// find returns the slot holding fp, or the empty slot where its probe ends.
// The table is never full, so a probe always ends.
func (t *fpTable) find(fp uint64) int {
	i := t.home(fp)
	for t.fps[i] != fp && t.fps[i] != 0 {
		if i++; i == len(t.fps) {
			i = 0
		}
	}
	return i
}

func (t *fpTable) rev(i int) uint64 {
	if t.revs64 != nil {
		return t.revs64[i]
	}
	return uint64(t.revs32[i])
}

func (t *fpTable) setRev(i int, rev uint64) {
	if t.revs64 != nil {
		t.revs64[i] = rev
	} else {
		t.revs32[i] = uint32(rev)
	}
}

// get returns the revision held under fp, and whether fp is held.
func (t *fpTable) get(fp uint64) (uint64, bool) {
	if fp == 0 {
		return t.zeroRev, t.zero
	}
	if len(t.fps) == 0 {
		return 0, false
	}
	i := t.find(fp)
	if t.fps[i] == 0 {
		return 0, false
	}
	return t.rev(i), true
}

// raise holds rev under fp, unless a newer revision is held already, and
// reports whether fp was new to the table.
func (t *fpTable) raise(fp, rev uint64) (added bool) {
	if fp == 0 {
		added, t.zero, t.zeroRev = !t.zero, true, max(t.zeroRev, rev)
		return added
	}
	if rev > math.MaxUint32 && t.revs64 == nil {
		t.widen()
	}
	if (t.used+1)*10 > len(t.fps)*9 {
		t.grow()
	}
	i := t.find(fp)
	if t.fps[i] == 0 {
		t.fps[i] = fp
		t.setRev(i, rev)
		t.used++
		return true
	}
	if rev > t.rev(i) {
		t.setRev(i, rev)
	}
	return false
}

// grow moves every slot into arrays a fifth longer.
func (t *fpTable) grow() {
	old := *t
	n := max(minFPSlots, len(old.fps)+len(old.fps)/5)
	t.fps = make([]uint64, n)
	if old.revs64 != nil {
		t.revs64 = make([]uint64, n)
	} else {
		t.revs32 = make([]uint32, n)
	}
	for i, fp := range old.fps {
		if fp != 0 {
			j := t.find(fp)
			t.fps[j] = fp
			t.setRev(j, old.rev(i))
		}
	}
}

// widen makes room for revisions past 32 bits.
func (t *fpTable) widen() {
	t.revs64 = make([]uint64, len(t.fps))
	for i, r := range t.revs32 {
		t.revs64[i] = uint64(r)
	}
	t.revs32 = nil
}

// reset empties the table and keeps its arrays.
func (t *fpTable) reset() {
	clear(t.fps)
	t.used, t.zero, t.zeroRev = 0, false, 0
}

// len returns how many fingerprints the table holds.
func (t *fpTable) len() int {
	if t.zero {
		return t.used + 1
	}
	return t.used
}

// bytes returns the size of the table's arrays.
func (t *fpTable) bytes() int64 {
	return int64(len(t.fps))*8 + int64(len(t.revs32))*4 + int64(len(t.revs64))*8
}
