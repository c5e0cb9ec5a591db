package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/footstep/authz/authz"
)

// KeyView is what the bucket holds of a key, read through the Loader: the
// record as stored, the key's tombstone, and the effective entry they make.
type KeyView struct {
	// Entry is the effective entry, as LoadKey returns it: a present record
	// is revoked while the key has a tombstone.
	Entry authz.KeyEntry
	// Stored is the record as written in key.<hash>.
	Stored authz.KeyEntry
	// Tombstone is the key's tombstone; nil when there is none. Its fields
	// are zero when its value does not decode (it still counts).
	Tombstone *Tombstone
	// TombstoneRevision is the tombstone's revision; 0 when there is none.
	TombstoneRevision uint64
}

// Revoked reports whether the key is revoked for good, by its record or by
// its tombstone, whether or not a record is present.
func (v KeyView) Revoked() bool {
	return v.Tombstone != nil || v.Stored.Presence == authz.Present && v.Stored.Record.State == authz.StateRevoked
}

// InspectKey reads a key's record and its tombstone, always from the bucket.
// A record that does not parse gives a view with an error wrapping
// ErrBadRecord; a NATS failure gives an error.
func (s *Loader) InspectKey(ctx context.Context, h authz.KeyHash) (KeyView, error) {
	stored, err := s.loadStored(ctx, h)
	if err != nil && !errors.Is(err, ErrBadRecord) {
		return KeyView{Entry: stored, Stored: stored}, err
	}
	t, terr := s.loadTombstone(ctx, h)
	if terr != nil {
		return KeyView{Entry: authz.KeyEntry{Revision: stored.Revision}, Stored: stored}, fmt.Errorf("inspect key %s: %w", h, terr)
	}
	v := KeyView{Entry: stored, Stored: stored}
	if t.present {
		v.Tombstone, v.TombstoneRevision = &t.value, t.revision
		if stored.Presence == authz.Present {
			v.Entry = revokedEntry(stored, t.revision, true)
		}
	}
	return v, err
}
