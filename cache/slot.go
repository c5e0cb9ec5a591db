package cache

import (
	"encoding/binary"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/footstep/authz/authz"
)

// slot is what ristretto holds for an entry: the entry packed by its table
// (keySlot, accountSlot), its revision, the epoch of its shard when it was
// stored, so that a Reset can invalidate everything stored before it without
// touching ristretto, and its shard, which ShouldUpdate is not told.
//
// ristretto holds a pointer to it: the items of its maps are then 48 bytes,
// kept inline, and a key's slot is one allocation of 48. Items holding the
// key and its entry were 168 bytes, each an allocation of 176 beside the
// map. A slot is never changed once handed to ristretto.
type slot[P any] struct {
	packed P
	rev    uint64
	epoch  uint32 // shard.epoch() when stored
	shard  uint8  // index in table.shards
}

// A shard's index must fit slot.shard.
const _ = uint8(shardCount - 1)

// keyHash is the ristretto key of a key: the first 8 bytes of its SHA-256,
// already uniform, so no second hash.
func keyHash(h authz.KeyHash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// keySlot is a key entry packed. It keeps the next 8 bytes of the key's
// hash, not the whole hash: with ristretto's key, the first 8, a hit
// matches 128 bits of SHA-256. Honest keys share 128 bits with even odds
// only among some 2^64 keys, and a client presenting a key whose hash
// matches a cached one's needs a second preimage of 128 bits of SHA-256.
// Pins, floors and loads in flight are kept by the whole hash.
//
// The ids are the bytes of one string, KeyID then AccountID, held by a
// pointer and two lengths instead of a 16-byte string header; the state is an
// index in keyStates, kept in the two bits the expiry's nanoseconds leave;
// the expiry is its Unix time, read back in UTC. The slot is then 48 bytes
// instead of 64.
type keySlot struct {
	check      uint64 // bytes 8 to 16 of the key hash
	sec        int64  // ExpiresAt.Unix()
	ids        *byte  // unsafe.StringData(KeyID + AccountID)
	nsecState  uint32 // ExpiresAt.Nanosecond()<<2 | index in keyStates
	keyLen     uint8  // len(KeyID)
	accountLen uint8  // len(AccountID)
	presence   authz.Presence
}

// The nanoseconds of a second, shifted by two, must fit keySlot.nsecState,
// and so must the indexes of keyStates.
const (
	_ = uint32(999_999_999 << 2)
	_ = uint8(3 - (len(keyStates) - 1))
)

// keyStates are the states a keySlot holds, by index: a record's and the
// none of an entry without a record.
var keyStates = [...]authz.KeyState{"", authz.StateActive, authz.StateSuspended, authz.StateRevoked}

// packKey packs e, the entry of the key with hash h. It reports false for an
// entry it cannot give back exactly, which is then not cached: a state
// other than keyStates, an id longer than 255 bytes, an expiry that is not in
// UTC or holds a monotonic clock reading. A record read from the bucket has
// none of these (authz.KeyRecord.Validate, authz.MaxIDLen, authz.ParseExpiry).
func packKey(h authz.KeyHash, e authz.KeyEntry) (keySlot, bool) {
	r := &e.Record
	state := slices.Index(keyStates[:], r.State)
	sec, nsec := r.ExpiresAt.Unix(), uint32(r.ExpiresAt.Nanosecond())
	// == and not Equal: the location and the clock reading must survive too.
	if state < 0 || len(r.KeyID) > math.MaxUint8 || len(r.AccountID) > math.MaxUint8 ||
		expiry(sec, nsec) != r.ExpiresAt {
		return keySlot{}, false
	}
	return keySlot{
		check: binary.BigEndian.Uint64(h[8:16]),
		sec:   sec, nsecState: nsec<<2 | uint32(state),
		ids:    unsafe.StringData(r.KeyID + r.AccountID),
		keyLen: uint8(len(r.KeyID)), accountLen: uint8(len(r.AccountID)),
		presence: e.Presence,
	}, true
}

// unpackKey returns the entry s holds, if s is the key with hash h's. It
// allocates nothing: the ids are slices of the slot's string.
func unpackKey(h authz.KeyHash, s *slot[keySlot]) (authz.KeyEntry, bool) {
	p := &s.packed
	if p.check != binary.BigEndian.Uint64(h[8:16]) {
		return authz.KeyEntry{}, false
	}
	// The string is rebuilt from the pointer that keeps its bytes alive;
	// nothing writes them after packKey.
	ids := unsafe.String(p.ids, int(p.keyLen)+int(p.accountLen))
	return authz.KeyEntry{Revision: s.rev, Presence: p.presence, Record: authz.KeyRecord{
		KeyID: ids[:p.keyLen], AccountID: ids[p.keyLen:],
		State: keyStates[p.nsecState&3], ExpiresAt: expiry(p.sec, p.nsecState>>2),
	}}, true
}

// expiry is the time packKey packed, in UTC: the zero time for no expiry.
func expiry(sec int64, nsec uint32) time.Time { return time.Unix(sec, int64(nsec)).UTC() }

// accountSlot is an account entry packed: its id, to rule out collisions of
// the 64-bit hash, with the entry less the revision.
type accountSlot struct {
	id       string
	account  authz.Account
	presence authz.Presence
}

func packAccount(id string, e authz.AccountEntry) (accountSlot, bool) {
	return accountSlot{id: id, account: e.Account, presence: e.Presence}, true
}

func unpackAccount(id string, s *slot[accountSlot]) (authz.AccountEntry, bool) {
	if s.packed.id != id {
		return authz.AccountEntry{}, false
	}
	return authz.AccountEntry{Revision: s.rev, Presence: s.packed.presence, Account: s.packed.account}, true
}
