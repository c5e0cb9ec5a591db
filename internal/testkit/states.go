package testkit

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/footstep/authz/authz"
)

// States is an in-memory set of key and account entries that answers both
// as a cache.Loader (LoadKey, LoadAccount) and as an envoy.States (Key,
// Account): an entry not put is Absent. It is safe for concurrent use; the
// zero value is not, use NewStates.
type States struct {
	mu       sync.Mutex
	keys     map[authz.KeyHash]authz.KeyEntry
	accounts map[string]authz.AccountEntry
	err      error
	hold     chan struct{}
	loads    atomic.Int64
}

// NewStates returns an empty States.
func NewStates() *States {
	return &States{keys: map[authz.KeyHash]authz.KeyEntry{}, accounts: map[string]authz.AccountEntry{}}
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
	if err := s.wait(ctx); err != nil {
		return authz.KeyEntry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.keys[h]; ok {
		return e, nil
	}
	return authz.KeyEntry{Presence: authz.Absent}, nil
}

// LoadAccount returns the account's entry, or an Absent one.
func (s *States) LoadAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	if err := s.wait(ctx); err != nil {
		return authz.AccountEntry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.accounts[id]; ok {
		return e, nil
	}
	return authz.AccountEntry{Presence: authz.Absent}, nil
}

// Key is LoadKey, for envoy.States.
func (s *States) Key(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	return s.LoadKey(ctx, h)
}

// Account is LoadAccount, for envoy.States.
func (s *States) Account(ctx context.Context, id string) (authz.AccountEntry, error) {
	return s.LoadAccount(ctx, id)
}

// wait counts a lookup, holds it while Hold says so, and returns the
// failure Fail set or the context's error.
func (s *States) wait(ctx context.Context) error {
	s.loads.Add(1)
	s.mu.Lock()
	gate, err := s.hold, s.err
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}
