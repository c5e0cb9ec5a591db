package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// Store reads single records from the bucket, for cache misses.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns a Store reading from kv.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// LoadKey reads the record of a key hash. A record that exists and parses is
// Present with its revision; no record (never written, deleted or purged) is
// Absent with a nil error and revision 0, since a Get does not report a
// delete marker's revision. A record that does not parse is Unreadable with
// its revision and an error wrapping ErrBadRecord. A NATS failure is the
// zero entry, which reads as Unreadable, and the error.
func (s *Store) LoadKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	e, found, err := s.get(ctx, KeySubject(h))
	if err != nil || !found {
		return authz.KeyEntry{Presence: absentIf(found, err)}, err
	}
	rec, err := DecodeKey(e.Value())
	if err != nil {
		return authz.KeyEntry{Revision: e.Revision()}, fmt.Errorf("load key %s: %w", h, err)
	}
	return authz.KeyEntry{Revision: e.Revision(), Presence: authz.Present, Record: rec}, nil
}

// LoadAccount reads the record of an account, with the outcomes of LoadKey.
func (s *Store) LoadAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	if !authz.ValidID(id) {
		return authz.AccountEntry{}, fmt.Errorf("load account: %w: invalid account id", ErrBadRecord)
	}
	e, found, err := s.get(ctx, AccountSubject(id))
	if err != nil || !found {
		return authz.AccountEntry{Presence: absentIf(found, err)}, err
	}
	acct, err := DecodeAccount(e.Value())
	if err != nil {
		return authz.AccountEntry{Revision: e.Revision()}, fmt.Errorf("load account %s: %w", id, err)
	}
	return authz.AccountEntry{Revision: e.Revision(), Presence: authz.Present, Account: acct}, nil
}

// get returns the entry, found false when there is none (or only a delete
// marker), or an error when NATS did not answer.
func (s *Store) get(ctx context.Context, kvKey string) (jetstream.KeyValueEntry, bool, error) {
	e, err := s.kv.Get(ctx, kvKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("get %s from bucket %s: %w", kvKey, s.kv.Bucket(), err)
	}
	return e, true, nil
}

// absentIf returns Absent for a lookup that answered "no record", and
// Unreadable for one that failed.
func absentIf(found bool, err error) authz.Presence {
	if err == nil && !found {
		return authz.Absent
	}
	return authz.Unreadable
}
