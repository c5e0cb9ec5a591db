package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrKeyExists is returned by Rotate when the new key already has a record
// or a tombstone.
var ErrKeyExists = errors.New("key already exists")

// Expire sets an existing key's expires_at to at and returns the record's
// revision; a no-op when it already is. From that instant the key answers as
// revoked everywhere. It refuses a revoked key and one already expired at
// the Publisher's clock (both match authz.ErrRevokedTerminal); at may be in
// the past, which expires the key at once.
func (p *Publisher) Expire(ctx context.Context, h authz.KeyHash, at time.Time) (uint64, error) {
	at, err := expiryInstant(at)
	if err != nil {
		return 0, fmt.Errorf("expire key %s: %w", h, err)
	}
	return p.changeKey(ctx, "expire", h, func(cur authz.KeyRecord) (authz.KeyRecord, bool) {
		if cur.ExpiresAt.Equal(at) {
			return cur, true
		}
		cur.ExpiresAt = at
		return cur, false
	})
}

// expiryInstant checks at and strips what the record cannot hold (the
// monotonic reading, the zone).
func expiryInstant(at time.Time) (time.Time, error) {
	if at.IsZero() {
		return at, authz.ErrExpiryFormat
	}
	at = at.UTC().Round(0)
	return at, authz.CheckExpiry(at)
}

// Rotation is what Rotate did.
type Rotation struct {
	OldKeyID  string
	NewKeyID  string
	AccountID string
	// OldExpiresAt is the instant from which the old key answers as
	// revoked: now plus the grace, or the old key's earlier expiry.
	OldExpiresAt time.Time
	OldRevision  uint64 // revision of the old key's record with its expiry
	NewRevision  uint64 // revision of the new key's record
}

// Rotate replaces the key oldHash by newHash: it creates newHash as an
// active key with id newKeyID on the old key's account, then sets the old
// key's expires_at to now+grace (kept when the old key expires earlier),
// both with revision checks. It refuses an old key that is missing
// (ErrNotFound), revoked or expired at now (authz.ErrRevokedTerminal), and a
// new key that exists already (ErrKeyExists). When the old key cannot be
// changed after the new one was created, the new key is deleted again.
func (p *Publisher) Rotate(ctx context.Context, oldHash, newHash authz.KeyHash, newKeyID string, grace time.Duration, now time.Time) (Rotation, error) {
	at, err := rotationCheck(oldHash, newHash, newKeyID, grace, now)
	if err != nil {
		return Rotation{}, err
	}
	old, err := p.GetKey(ctx, oldHash)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate: old key: %w", err)
	}
	if err := authz.CheckTransitionAt(&old.Record, &old.Record, now); err != nil {
		return Rotation{}, fmt.Errorf("rotate: old key %s: %w", oldHash, err)
	}
	r := Rotation{OldKeyID: old.Record.KeyID, NewKeyID: newKeyID, AccountID: old.Record.AccountID}
	next := authz.KeyRecord{KeyID: newKeyID, AccountID: r.AccountID, State: authz.StateActive}
	if r.NewRevision, err = p.createKey(ctx, newHash, next); err != nil {
		return Rotation{}, err
	}
	r.OldRevision, err = p.changeKey(ctx, "rotate", oldHash, func(cur authz.KeyRecord) (authz.KeyRecord, bool) {
		if !cur.ExpiresAt.IsZero() && !cur.ExpiresAt.After(at) {
			return cur, true
		}
		cur.ExpiresAt = at
		return cur, false
	})
	if err != nil {
		_ = p.kv.Delete(ctx, KeyKVKey(newHash), jetstream.LastRevision(r.NewRevision))
		return Rotation{}, fmt.Errorf("rotate (new key %s removed again): %w", newHash, err)
	}
	if r.OldExpiresAt = at; !old.Record.ExpiresAt.IsZero() && old.Record.ExpiresAt.Before(at) {
		r.OldExpiresAt = old.Record.ExpiresAt
	}
	return r, nil
}

func rotationCheck(oldHash, newHash authz.KeyHash, newKeyID string, grace time.Duration, now time.Time) (time.Time, error) {
	switch {
	case oldHash == newHash:
		return time.Time{}, errors.New("rotate: the new key is the old key")
	case authz.CheckID("new key id", newKeyID) != nil:
		return time.Time{}, fmt.Errorf("rotate: %w: %w", ErrBadRecord, authz.CheckID("new key id", newKeyID))
	case grace < 0:
		return time.Time{}, fmt.Errorf("rotate: grace %v is negative", grace)
	}
	at, err := expiryInstant(now.Add(grace))
	if err != nil {
		return time.Time{}, fmt.Errorf("rotate: old key's expiry: %w", err)
	}
	return at, nil
}

// createKey writes rec as a new key, refusing one that has a record or a
// tombstone.
func (p *Publisher) createKey(ctx context.Context, h authz.KeyHash, rec authz.KeyRecord) (uint64, error) {
	val, err := EncodeKey(rec)
	if err != nil {
		return 0, fmt.Errorf("create key %s: %w", h, err)
	}
	return p.retry(ctx, "create key "+h.String(), func(ctx context.Context) (uint64, error) {
		v, err := p.store().InspectKey(ctx, h)
		switch {
		case err != nil && !errors.Is(err, ErrBadRecord):
			return 0, err
		case v.Stored.Presence != authz.Absent || v.Tombstone != nil:
			return 0, ErrKeyExists
		}
		return p.kv.Create(ctx, KeyKVKey(h), val)
	})
}
