package cache

import (
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/footstep/authz/authz"
)

// slot is what ristretto holds for an entry: the entry packed by its table
// (keySlot, accountSlot), its revision, the sequence number of its Set, so
// that a Reset can invalidate everything stored before it without touching
// ristretto, and its shard, which ShouldUpdate is not told.
//
// ristretto holds a pointer to it: the items of its maps are then 48 bytes,
// kept inline, and a key's slot is one allocation of 64. Items holding the
// key and its entry were 168 bytes, each an allocation of 176 beside the
// map. A slot is never changed once handed to ristretto.
type slot[P any] struct {
	packed P
	rev    uint64
	seq    uint64
	shard  uint8 // index in table.shards
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
// The ids share one string, the state is an index in keyStates, and the
// expiry is its Unix time, read back in UTC.
type keySlot struct {
	check    uint64 // bytes 8 to 16 of the key hash
	sec      int64  // ExpiresAt.Unix()
	ids      string // KeyID then AccountID
	nsec     int32  // ExpiresAt.Nanosecond()
	idLen    uint16 // len(KeyID)
	state    uint8  // index in keyStates
	presence authz.Presence
}

// keyStates are the states a keySlot holds, by index: a record's and the
// none of an entry without a record.
var keyStates = [...]authz.KeyState{"", authz.StateActive, authz.StateSuspended, authz.StateRevoked}

// packKey packs e, the entry of the key with hash h. It reports false for an
// entry it cannot give back exactly, which is then not cached: a state
// other than keyStates, a key id longer than 65535 bytes, an expiry that is
// not in UTC or holds a monotonic clock reading. A record read from the bucket has
// none of these (authz.KeyRecord.Validate, authz.ParseExpiry).
func packKey(h authz.KeyHash, e authz.KeyEntry) (keySlot, bool) {
	r := &e.Record
	state := slices.Index(keyStates[:], r.State)
	sec, nsec := r.ExpiresAt.Unix(), int32(r.ExpiresAt.Nanosecond())
	// == and not Equal: the location and the clock reading must survive too.
	if state < 0 || len(r.KeyID) > math.MaxUint16 || expiry(sec, nsec) != r.ExpiresAt {
		return keySlot{}, false
	}
	return keySlot{
		check: binary.BigEndian.Uint64(h[8:16]),
		sec:   sec, nsec: nsec,
		ids: r.KeyID + r.AccountID, idLen: uint16(len(r.KeyID)),
		state: uint8(state), presence: e.Presence,
	}, true
}

// unpackKey returns the entry s holds, if s is the key with hash h's. It
// allocates nothing: the ids are slices of the slot's string.
func unpackKey(h authz.KeyHash, s *slot[keySlot]) (authz.KeyEntry, bool) {
	p := &s.packed
	if p.check != binary.BigEndian.Uint64(h[8:16]) {
		return authz.KeyEntry{}, false
	}
	return authz.KeyEntry{Revision: s.rev, Presence: p.presence, Record: authz.KeyRecord{
		KeyID: p.ids[:p.idLen], AccountID: p.ids[p.idLen:],
		State: keyStates[p.state], ExpiresAt: expiry(p.sec, p.nsec),
	}}, true
}

// expiry is the time packKey packed, in UTC: the zero time for no expiry.
func expiry(sec int64, nsec int32) time.Time { return time.Unix(sec, int64(nsec)).UTC() }

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
