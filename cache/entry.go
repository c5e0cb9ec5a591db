package cache

import (
	"encoding/binary"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/footstep/authz/authz"
)

// stored is what a table hands ristretto for one entry: a keyBlob or an
// *accountSlot. It is never changed once handed over.
type stored interface {
	comparable
	stamped() stamp
}

// stamp is what every stored entry carries beside the entry: its revision,
// the epoch of its shard when it was stored, so that a Reset can invalidate
// everything stored before it without touching ristretto, and its shard,
// which ShouldUpdate is not told.
type stamp struct {
	rev   uint64
	epoch uint32 // shard.epoch() when stored
	shard uint8  // index in table.shards
}

// A shard's index must fit stamp.shard.
const _ = uint8(shardCount - 1)

// keyHash is the ristretto key of a key: the first 8 bytes of its SHA-256,
// already uniform, so no second hash.
func keyHash(h authz.KeyHash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// keyBlob is a key entry as ristretto holds it: one allocation of bytes,
// its fields at the offsets below, then KeyID and AccountID. Holding no
// pointer, the allocation is marked by the collector without being scanned:
// a cycle marks one object a cached key, not a slot and the ids it points to
// (a full collection with a million keys cached: 103 ms on one core instead
// of 220, BenchmarkStoreMemory's gc-ms). The entry is 36 bytes plus the ids:
// a 64-byte allocation for ids up to 28 bytes together.
//
// It keeps bytes 8 to 16 of the key's hash, not the whole hash: with
// ristretto's key, the first 8, a hit matches 128 bits of SHA-256. Honest
// keys share 128 bits with even odds only among some 2^64 keys, and a client
// presenting a key whose hash matches a cached one's needs a second preimage
// of 128 bits of SHA-256. Pins, floors and loads in flight are kept by the
// whole hash.
//
// The state is an index in keyStates, kept in the two bits the expiry's
// nanoseconds leave; the expiry is its Unix time, read back in UTC.
type keyBlob struct{ p *byte }

// The offsets of a keyBlob's fields, little-endian.
const (
	blobCheck      = 0  // uint64: bytes 8 to 16 of the key hash
	blobSec        = 8  // int64: ExpiresAt.Unix()
	blobRev        = 16 // uint64: the entry's revision
	blobNsecState  = 24 // uint32: ExpiresAt.Nanosecond()<<2 | index in keyStates
	blobEpoch      = 28 // uint32: stamp.epoch
	blobShard      = 32 // uint8: stamp.shard
	blobKeyLen     = 33 // uint8: len(KeyID)
	blobAccountLen = 34 // uint8: len(AccountID)
	blobPresence   = 35 // uint8: authz.Presence
	blobIDs        = 36 // KeyID, then AccountID
)

// The nanoseconds of a second, shifted by two, must fit the blob's 32 bits,
// and so must the indexes of keyStates.
const (
	_ = uint32(999_999_999 << 2)
	_ = uint8(3 - (len(keyStates) - 1))
)

// keyStates are the states a keyBlob holds, by index: a record's and the
// none of an entry without a record.
var keyStates = [...]authz.KeyState{"", authz.StateActive, authz.StateSuspended, authz.StateRevoked}

// head is the blob's fixed part.
func (b keyBlob) head() []byte { return unsafe.Slice(b.p, blobIDs) }

func (b keyBlob) stamped() stamp {
	h := b.head()
	return stamp{rev: le.Uint64(h[blobRev:]), epoch: le.Uint32(h[blobEpoch:]), shard: h[blobShard]}
}

var le = binary.LittleEndian

// packKey packs e, the entry of the key with hash h, stored with st. It
// reports false for an entry it cannot give back exactly, which is then not
// cached: a state other than keyStates, an id longer than 255 bytes, an
// expiry that is not in UTC or holds a monotonic clock reading. A record read
// from the bucket has none of these (authz.KeyRecord.Validate,
// authz.MaxIDLen, authz.ParseExpiry).
func packKey(h authz.KeyHash, e authz.KeyEntry, st stamp) (keyBlob, bool) {
	r := &e.Record
	state := slices.Index(keyStates[:], r.State)
	sec, nsec := r.ExpiresAt.Unix(), uint32(r.ExpiresAt.Nanosecond())
	// == and not Equal: the location and the clock reading must survive too.
	if state < 0 || len(r.KeyID) > math.MaxUint8 || len(r.AccountID) > math.MaxUint8 ||
		expiry(sec, nsec) != r.ExpiresAt {
		return keyBlob{}, false
	}
	b := make([]byte, blobIDs+len(r.KeyID)+len(r.AccountID))
	le.PutUint64(b[blobCheck:], binary.BigEndian.Uint64(h[8:16]))
	le.PutUint64(b[blobSec:], uint64(sec))
	le.PutUint64(b[blobRev:], st.rev)
	le.PutUint32(b[blobNsecState:], nsec<<2|uint32(state))
	le.PutUint32(b[blobEpoch:], st.epoch)
	b[blobShard] = st.shard
	b[blobKeyLen], b[blobAccountLen] = uint8(len(r.KeyID)), uint8(len(r.AccountID))
	b[blobPresence] = uint8(e.Presence)
	copy(b[blobIDs+copy(b[blobIDs:], r.KeyID):], r.AccountID)
	return keyBlob{&b[0]}, true
}

// unpackKey returns the entry b holds, if b is the key with hash h's. It
// allocates nothing: the ids are strings over the blob's bytes, which
// nothing writes after packKey.
func unpackKey(h authz.KeyHash, b keyBlob) (authz.KeyEntry, bool) {
	head := b.head()
	if le.Uint64(head[blobCheck:]) != binary.BigEndian.Uint64(h[8:16]) {
		return authz.KeyEntry{}, false
	}
	keyLen, n := int(head[blobKeyLen]), int(head[blobKeyLen])+int(head[blobAccountLen])
	var ids string
	if n > 0 {
		ids = unsafe.String(&unsafe.Slice(b.p, blobIDs+n)[blobIDs], n)
	}
	nsecState := le.Uint32(head[blobNsecState:])
	return authz.KeyEntry{Revision: le.Uint64(head[blobRev:]), Presence: authz.Presence(head[blobPresence]), Record: authz.KeyRecord{
		KeyID: ids[:keyLen], AccountID: ids[keyLen:],
		State: keyStates[nsecState&3], ExpiresAt: expiry(int64(le.Uint64(head[blobSec:])), nsecState>>2),
	}}, true
}

// expiry is the time packKey packed, in UTC: the zero time for no expiry.
func expiry(sec int64, nsec uint32) time.Time { return time.Unix(sec, int64(nsec)).UTC() }

// accountSlot is an account entry as ristretto holds it: its id, to rule
// out collisions of the 64-bit hash, with the entry less the revision, which
// the stamp holds.
type accountSlot struct {
	id       string
	account  authz.Account
	stamp    stamp
	presence authz.Presence
}

func (s *accountSlot) stamped() stamp { return s.stamp }

func packAccount(id string, e authz.AccountEntry, st stamp) (*accountSlot, bool) {
	return &accountSlot{id: id, account: e.Account, stamp: st, presence: e.Presence}, true
}

func unpackAccount(id string, s *accountSlot) (authz.AccountEntry, bool) {
	if s.id != id {
		return authz.AccountEntry{}, false
	}
	return authz.AccountEntry{Revision: s.stamp.rev, Presence: s.presence, Account: s.account}, true
}
