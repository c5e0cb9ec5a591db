package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

func init() {
	registerGroup("key", "Put, change, read and delete API keys (by hash: the key never leaves this process)",
		`  read -rs KEY && printf '%s\n' "$KEY" | footstepctl key put --key - --account acct_9
  footstepctl key revoke --hash 5e8f...
  FOOTSTEP_API_KEY=... footstepctl key get -o table`)
}

// keyOut is a key as footstepctl prints it.
type keyOut struct {
	KeyHash   string `json:"key_hash"`
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id"`
	State     string `json:"state"` // effective: revoked when the key has a tombstone
	// ExpiresAt is the instant from which the key answers as revoked
	// (RFC 3339, UTC); empty when it does not expire.
	ExpiresAt string `json:"expires_at,omitempty"`
	Revision  uint64 `json:"revision"`
	// Tombstone is true when the key is revoked for good by a tombstone.
	Tombstone         bool   `json:"tombstone,omitempty"`
	TombstoneRevision uint64 `json:"tombstone_revision,omitempty"`
	// StoredState is the state written in the record when it differs from
	// State: a revival no replica has written back as revoked yet.
	StoredState string `json:"stored_state,omitempty"`
}

func (k keyOut) header() []string {
	return []string{"KEY_HASH", "KEY_ID", "ACCOUNT_ID", "STATE", "EXPIRES_AT", "REVISION", "TOMBSTONE", "STORED_STATE"}
}

func (k keyOut) row() []string {
	tomb, stored, expires := "-", "-", "-"
	if k.Tombstone {
		tomb = "rev " + strconv.FormatUint(k.TombstoneRevision, 10)
	}
	if k.StoredState != "" {
		stored = k.StoredState
	}
	if k.ExpiresAt != "" {
		expires = k.ExpiresAt
	}
	return []string{k.KeyHash, k.KeyID, k.AccountID, k.State, expires, strconv.FormatUint(k.Revision, 10), tomb, stored}
}

func recordOut(h authz.KeyHash, rec authz.KeyRecord, rev uint64) keyOut {
	out := keyOut{KeyHash: h.String(), KeyID: rec.KeyID, AccountID: rec.AccountID, State: string(rec.State), Revision: rev}
	if !rec.ExpiresAt.IsZero() {
		out.ExpiresAt = authz.FormatExpiry(rec.ExpiresAt)
	}
	return out
}

// viewOut shows a key's effective state: revoked when it has a tombstone,
// whatever its record says.
func viewOut(h authz.KeyHash, v events.KeyView) keyOut {
	out := recordOut(h, v.Entry.Record, v.Entry.Revision)
	out.Tombstone, out.TombstoneRevision = v.Tombstone != nil, v.TombstoneRevision
	if stored := v.Stored.Record.State; stored != v.Entry.Record.State {
		out.StoredState = string(stored)
	}
	return out
}

// errKeyNotFound is the answer about a key without record or tombstone.
var errKeyNotFound = errors.New("key not found")

// keyError turns the errors of a key change or read into what the user can
// do about them.
func keyError(err error) error {
	switch {
	case errors.Is(err, events.ErrNotFound):
		return errKeyNotFound
	case errors.Is(err, events.ErrBadRecord):
		return fmt.Errorf("the key's record is unreadable (%s): key get shows it, key delete removes it, key put --force-overwrite replaces it",
			problem(err))
	}
	return err
}
