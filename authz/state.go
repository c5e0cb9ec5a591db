package authz

import (
	"errors"
	"time"
)

// KeyState is the state of a known key.
type KeyState string

// The states a key record may hold. A deleted key has no record.
const (
	StateActive    KeyState = "active"
	StateSuspended KeyState = "suspended"
	StateRevoked   KeyState = "revoked"
)

// Valid reports whether s is one of the documented states.
func (s KeyState) Valid() bool {
	return s == StateActive || s == StateSuspended || s == StateRevoked
}

// KeyRecord is what is known of a key: its id, its account, its state and
// when it expires.
type KeyRecord struct {
	KeyID     string
	AccountID string
	State     KeyState
	// ExpiresAt is the instant from which the key answers as revoked, in
	// UTC; the zero time means the key does not expire.
	ExpiresAt time.Time
}

// Validate reports the first field that breaks the schema. It is the one
// check of a record: the watcher, the loader, the publisher and footstepctl
// all call it. Its errors name the field, never its value: a record is
// logged, and a value may hold a secret written there by mistake.
func (r KeyRecord) Validate() error {
	if err := CheckID("key_id", r.KeyID); err != nil {
		return err
	}
	if err := CheckID("account_id", r.AccountID); err != nil {
		return err
	}
	switch {
	case !r.State.Valid():
		return errors.New("state: want active, suspended or revoked")
	case CheckExpiry(r.ExpiresAt) != nil:
		return ErrExpiryFormat
	}
	return nil
}

// ErrRevokedTerminal is returned for any change to a revoked key other than
// its deletion: revoked keys cannot be reactivated, suspended or put again.
var ErrRevokedTerminal = errors.New("key is revoked: a revoked key can only be deleted")

// CheckTransition reports whether a key whose current record is prev (nil
// when there is none) may become next (nil for a deletion), leaving expiry
// aside (CheckTransitionAt weighs it).
func CheckTransition(prev, next *KeyRecord) error {
	if prev != nil && prev.State == StateRevoked && next != nil {
		return ErrRevokedTerminal
	}
	return nil
}

// Account is what is known of an account: its balance.
type Account struct {
	Balance Balance
}

// Presence says whether a looked-up record exists. The zero value,
// Unreadable, never allows: a state that was not read is not a state.
type Presence uint8

// The outcomes of a lookup.
const (
	Unreadable Presence = iota // the state could not be read or did not parse
	Present                    // the record exists and parsed
	Absent                     // there is no record (never created, deleted or purged)
)

// String returns "unreadable", "present" or "absent".
func (p Presence) String() string {
	switch p {
	case Present:
		return "present"
	case Absent:
		return "absent"
	}
	return "unreadable"
}

// KeyEntry is a key's record as of a revision of the store it came from.
type KeyEntry struct {
	Revision uint64 // store revision of the record; 0 when unknown
	Presence Presence
	Record   KeyRecord // set when Presence is Present
}

// AccountEntry is an account's record as of a revision of the store.
type AccountEntry struct {
	Revision uint64 // store revision of the record; 0 when unknown
	Presence Presence
	Account  Account // set when Presence is Present
}
