package events

// The KV keys of the bucket's records: each names its kind of record and the
// key hash or account id it is about. The values are in schema.go.

import (
	"strings"

	"github.com/footstep/authz/authz"
)

// KV key prefixes of the bucket's kinds of records.
const (
	KVKeyPrefix       = "key."
	KVAccountPrefix   = "account."
	KVTombstonePrefix = "revoked." // a revoked key's tombstone (tombstone.go)
)

// KeyKVKey returns the KV key of a key record: "key.<64 lowercase hex>".
func KeyKVKey(h authz.KeyHash) string { return KVKeyPrefix + h.String() }

// TombstoneKVKey returns the KV key of a key's tombstone:
// "revoked.<64 lowercase hex>".
func TombstoneKVKey(h authz.KeyHash) string { return KVTombstonePrefix + h.String() }

// AccountKVKey returns the KV key of an account record: "account.<id>".
func AccountKVKey(accountID string) string { return KVAccountPrefix + accountID }

// KVKeyKind tells which kind of record a KV key names.
type KVKeyKind uint8

// The kinds of KV key. The zero value is KindUnknown.
const (
	KindUnknown   KVKeyKind = iota // not a key this service reads
	KindKey                        // key.<hash>
	KindAccount                    // account.<account_id>
	KindTombstone                  // revoked.<hash>
)

// KVKey is a parsed KV key.
type KVKey struct {
	Kind      KVKeyKind
	Hash      authz.KeyHash // set for KindKey and KindTombstone
	AccountID string        // set for KindAccount
}

// ParseKVKey parses a KV key strictly: "key." or "revoked." and 64 lowercase
// hex digits, or "account." and a valid account id. Anything else is
// KindUnknown.
func ParseKVKey(name string) KVKey {
	if rest, ok := strings.CutPrefix(name, KVKeyPrefix); ok {
		return hashKVKey(KindKey, rest)
	}
	if rest, ok := strings.CutPrefix(name, KVTombstonePrefix); ok {
		return hashKVKey(KindTombstone, rest)
	}
	if rest, ok := strings.CutPrefix(name, KVAccountPrefix); ok && authz.ValidID(rest) {
		return KVKey{Kind: KindAccount, AccountID: rest}
	}
	return KVKey{}
}

func hashKVKey(kind KVKeyKind, hex string) KVKey {
	if h, err := authz.ParseKeyHash(hex); err == nil {
		return KVKey{Kind: kind, Hash: h}
	}
	return KVKey{}
}
