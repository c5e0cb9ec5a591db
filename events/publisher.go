package events

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound is returned for a change to, or a read of, a key or account
// that has no record.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when other writers kept changing a record through
// every retry of a change.
var ErrConflict = errors.New("record kept changing under concurrent writers")

// maxAttempts bounds the read-check-write retries of one change.
const maxAttempts = 16

// Publisher writes key and account changes to the bucket. Every key change
// reads the record, its revision and the key's tombstone through the stream
// leader, checks authz.CheckTransition against the effective record (a key
// with a tombstone is revoked, and a revoked key can only be deleted), and
// writes only if the revision is still the same, retrying from the read when
// another writer came first; so two writers never lose each other's change
// and revoked stays terminal. Revoke writes the key's tombstone, DeleteKey
// removes it.
// A key expired at the Publisher's clock is revoked too: it can only be
// revoked or deleted (authz.CheckTransitionAt).
// Callers name keys by hash (authz.APIKey.Hash): a Publisher never sees a key.
type Publisher struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	now func() time.Time
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithClock makes the Publisher judge expiry by now instead of time.Now.
func WithClock(now func() time.Time) PublisherOption {
	return func(p *Publisher) { p.now = now }
}

// NewPublisher returns a Publisher writing to kv through js.
func NewPublisher(js jetstream.JetStream, kv jetstream.KeyValue, opts ...PublisherOption) *Publisher {
	p := &Publisher{js: js, kv: kv, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	return p
}

// store reads through the stream leader: a change decided on a follower's
// stale read would fail its revision check anyway, but a refusal would not.
func (p *Publisher) store() *Loader { return NewLoader(p.kv, ReadFromLeader(p.js.Conn())) }

// GetKey returns a key's effective record and revision (revoked when the key
// has a tombstone), or ErrNotFound.
func (p *Publisher) GetKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	e, err := p.store().LoadKey(ctx, h)
	if err == nil && e.Presence == authz.Absent {
		return e, fmt.Errorf("key %s: %w", h, ErrNotFound)
	}
	return e, err
}

// InspectKey returns a key's record, its tombstone and its effective state.
// A key with neither is ErrNotFound.
func (p *Publisher) InspectKey(ctx context.Context, h authz.KeyHash) (KeyView, error) {
	v, err := p.store().InspectKey(ctx, h)
	if err == nil && v.Stored.Presence == authz.Absent && v.Tombstone == nil {
		return v, fmt.Errorf("key %s: %w", h, ErrNotFound)
	}
	return v, err
}

// GetAccount returns an account's record and revision, or ErrNotFound.
func (p *Publisher) GetAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	e, err := p.store().LoadAccount(ctx, id)
	if err == nil && e.Presence == authz.Absent {
		return e, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	return e, err
}

// PutKey creates or replaces a key's record and returns its revision. It
// refuses to replace a revoked key's record (authz.ErrRevokedTerminal),
// and writes the tombstone of a record it puts as revoked.
func (p *Publisher) PutKey(ctx context.Context, h authz.KeyHash, rec authz.KeyRecord) (uint64, error) {
	if err := checkKey(rec); err != nil {
		return 0, fmt.Errorf("put key %s: %w", h, err)
	}
	rev, err := p.changeKey(ctx, "put", h, func(authz.KeyRecord) (authz.KeyRecord, bool) { return rec, false })
	if err != nil || rec.State != authz.StateRevoked {
		return rev, err
	}
	if _, err := p.Revoke(ctx, h); err != nil { // writes the tombstone
		return 0, err
	}
	return rev, nil
}

// Suspend sets an existing key's state to suspended; a no-op when it already is.
func (p *Publisher) Suspend(ctx context.Context, h authz.KeyHash) (uint64, error) {
	return p.changeKey(ctx, "suspend", h, setState(authz.StateSuspended))
}

// Reactivate sets an existing key's state to active; a no-op when it already is.
func (p *Publisher) Reactivate(ctx context.Context, h authz.KeyHash) (uint64, error) {
	return p.changeKey(ctx, "reactivate", h, setState(authz.StateActive))
}

// setState returns a change to state s, a no-op when the key is already in it.
func setState(s authz.KeyState) func(authz.KeyRecord) (authz.KeyRecord, bool) {
	return func(cur authz.KeyRecord) (authz.KeyRecord, bool) {
		if cur.State == s {
			return cur, true
		}
		cur.State = s
		return cur, false
	}
}

// SetBalance writes an account's balance and returns its revision. A
// balance is set, not added to, so the last writer wins.
func (p *Publisher) SetBalance(ctx context.Context, accountID string, b authz.Balance) (uint64, error) {
	if err := authz.CheckID("account id", accountID); err != nil {
		return 0, fmt.Errorf("set balance: %w: %w", ErrBadRecord, err)
	}
	val, err := EncodeAccount(authz.Account{Balance: b})
	if err != nil {
		return 0, fmt.Errorf("set balance of %s: %w", accountID, err)
	}
	rev, err := p.kv.Put(ctx, AccountKVKey(accountID), val)
	if err != nil {
		return 0, fmt.Errorf("set balance of %s in bucket %s: %w", accountID, p.kv.Bucket(), err)
	}
	return rev, nil
}

// retry waits a little before attempt n+1, longer as conflicts repeat, so
// that racing writers spread out.
func retryWait(ctx context.Context, attempt int) error {
	d := time.Duration(rand.N(1+attempt)) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// conflict reports whether err means another writer changed the record.
func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
