package testkit

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/footstep/authz/authz"
)

// States is an in-memory set of key and account entries that answers both
// as a cache.Loader (LoadKey, LoadAccount) and as an envoy.States (Key,
// Account): an entry not put is Absent. A lookup reads its answer when it is
// asked, then waits while Hold holds it, as a loader whose reply from the
// bucket is late. It is safe for concurrent use; the zero value is not, use
// NewStates.
type States struct {
	mu          sync.Mutex
	keys        map[authz.KeyHash]authz.KeyEntry
	accounts    map[string]authz.AccountEntry
	keyErrs     map[authz.KeyHash]error
	accountErrs map[string]error
	err         error
	hold        chan struct{}
	loads       atomic.Int64
}

// NewStates returns an empty States.
func NewStates() *States {
	return &States{
		keys: map[authz.KeyHash]authz.KeyEntry{}, accounts: map[string]authz.AccountEntry{},
		keyErrs: map[authz.KeyHash]error{}, accountErrs: map[string]error{},
	}
}

// PutKey sets the entry of the key with hash h.
func (s *States) PutKey(h authz.KeyHash, e authz.KeyEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[h] = e
}

// PutAccount sets the entry of account id.
func (s *States) PutAccount(id string, e authz.AccountEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id] = e
}

// Fail makes every lookup return err from now on; nil heals.
func (s *States) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// FailKey makes lookups of the key with hash h return err, as a record that
// cannot be read does; nil heals. Fail, when set, comes first.
func (s *States) FailKey(h authz.KeyHash, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyErrs[h] = err
}

// FailAccount makes lookups of account id return err; nil heals. Fail,
// when set, comes first.
func (s *States) FailAccount(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountErrs[id] = err
}

// Hold holds every lookup from now on until the returned release is called
// (or the lookup's context ends), to keep lookups in flight.
func (s *States) Hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.hold = gate
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(gate)
		})
	}
}

// Lookups is how many lookups of either kind have been asked.
func (s *States) Lookups() int64 { return s.loads.Load() }

// LoadKey returns the key's entry, or an Absent one.
func (s *States) LoadKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	return lookup(ctx, s, s.keys, s.keyErrs, h, authz.KeyEntry{Presence: authz.Absent})
}

// LoadAccount returns the account's entry, or an Absent one.
func (s *States) LoadAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	return lookup(ctx, s, s.accounts, s.accountErrs, id, authz.AccountEntry{Presence: authz.Absent})
}

// Key is LoadKey, for envoy.States.
func (s *States) Key(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	return s.LoadKey(ctx, h)
}

// Account is LoadAccount, for envoy.States.
func (s *States) Account(ctx context.Context, id string) (authz.AccountEntry, error) {
	return s.LoadAccount(ctx, id)
}

// lookup counts a lookup of k and reads, as they are when it is asked, its
// entry in entries (absent when there is none), its failure (Fail's, else
// its own in errs) and the gate Hold set; it then waits for the gate, or
// for ctx to end, before it answers.
func lookup[K comparable, E any](ctx context.Context, s *States, entries map[K]E, errs map[K]error, k K, absent E) (E, error) {
	s.loads.Add(1)
	s.mu.Lock()
	e, ok := entries[k]
	if !ok {
		e = absent
	}
	err := s.err
	if err == nil {
		err = errs[k]
	}
	gate := s.hold
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		var zero E
		return zero, err
	}
	return e, nil
}
