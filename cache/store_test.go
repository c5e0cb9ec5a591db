package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
)

// fakeLoader is a Loader behind the small interface: a map of entries, with
// an optional gate that holds every load until released.
type fakeLoader struct {
	mu       sync.Mutex
	keys     map[authz.KeyHash]authz.KeyEntry
	accounts map[string]authz.AccountEntry
	err      error
	gate     chan struct{}
	loads    atomic.Int64
}

func newFakeLoader() *fakeLoader {
	return &fakeLoader{keys: map[authz.KeyHash]authz.KeyEntry{}, accounts: map[string]authz.AccountEntry{}}
}

func (f *fakeLoader) LoadKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	f.loads.Add(1)
	f.mu.Lock()
	e, ok := f.keys[h]
	err, gate := f.err, f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return authz.KeyEntry{}, ctx.Err()
		}
	}
	if err != nil {
		return authz.KeyEntry{}, err
	}
	if !ok {
		return authz.KeyEntry{Presence: authz.Absent}, nil
	}
	return e, nil
}

func (f *fakeLoader) LoadAccount(_ context.Context, id string) (authz.AccountEntry, error) {
	f.loads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.accounts[id]; ok {
		return e, nil
	}
	return authz.AccountEntry{Presence: authz.Absent}, nil
}

func (f *fakeLoader) set(h authz.KeyHash, e authz.KeyEntry) {
	f.mu.Lock()
	f.keys[h] = e
	f.mu.Unlock()
}

func newTestStore(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 4 << 20
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func present(rev uint64, state authz.KeyState) authz.KeyEntry {
	return authz.KeyEntry{Revision: rev, Presence: authz.Present,
		Record: authz.KeyRecord{KeyID: "key_1", AccountID: "acct_1", State: state}}
}

func hashOf(s string) authz.KeyHash { return authz.APIKey(s).Hash() }

func TestMissLoadsThenHits(t *testing.T) {
	l := newFakeLoader()
	h := hashOf("sk_live_a")
	l.set(h, present(3, authz.StateActive))
	s := newTestStore(t, Config{Loader: l})
	for i := 0; i < 3; i++ {
		e, err := s.Key(context.Background(), h)
		if err != nil || e != present(3, authz.StateActive) {
			t.Fatalf("Key() = %v, %v; want the loaded entry", e, err)
		}
		s.keys.rc.Wait()
	}
	if n := l.loads.Load(); n != 1 {
		t.Errorf("loads = %d; want 1 (later reads are hits)", n)
	}
	if st := s.Stats().Keys; st.Hits != 2 || st.Misses != 1 {
		t.Errorf("stats = %+v; want 2 hits, 1 miss", st)
	}
}

func TestOneLoadInFlightPerKey(t *testing.T) {
	l := newFakeLoader()
	l.gate = make(chan struct{})
	h := hashOf("sk_live_b")
	l.set(h, present(1, authz.StateSuspended))
	s := newTestStore(t, Config{Loader: l})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e, err := s.Key(context.Background(), h); err != nil || e.Record.State != authz.StateSuspended {
				t.Errorf("Key() = %v, %v; want suspended", e, err)
			}
		}()
	}
	waitFor(t, func() bool { return s.Stats().Keys.Misses == 50 })
	close(l.gate)
	wg.Wait()
	if n := l.loads.Load(); n != 1 {
		t.Errorf("loads = %d; want 1 for 50 concurrent misses", n)
	}
}

func TestCallerDeadlineDoesNotFailOthers(t *testing.T) {
	l := newFakeLoader()
	l.gate = make(chan struct{})
	h := hashOf("sk_live_c")
	l.set(h, present(1, authz.StateActive))
	s := newTestStore(t, Config{Loader: l})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if e, err := s.Key(ctx, h); err == nil || e.Presence != authz.Unreadable {
		t.Fatalf("Key(cancelled) = %v, %v; want an unreadable entry and an error", e, err)
	}
	close(l.gate)
	if e, err := s.Key(context.Background(), h); err != nil || e.Presence != authz.Present {
		t.Fatalf("Key() = %v, %v; want present", e, err)
	}
}

func TestLoadErrorIsNotCached(t *testing.T) {
	l := newFakeLoader()
	l.err = errors.New("nats: no responders")
	s := newTestStore(t, Config{Loader: l})
	h := hashOf("sk_live_d")
	for i := 0; i < 2; i++ {
		if e, err := s.Key(context.Background(), h); err == nil || e.Presence != authz.Unreadable {
			t.Fatalf("Key() = %v, %v; want unreadable with an error", e, err)
		}
		s.keys.rc.Wait()
	}
	if n := l.loads.Load(); n != 2 {
		t.Errorf("loads = %d; want 2: a failure must not be cached", n)
	}
}

func TestNegativeEntryExpires(t *testing.T) {
	l := newFakeLoader()
	s := newTestStore(t, Config{Loader: l, NegativeTTL: 20 * time.Millisecond})
	h := hashOf("sk_live_e")
	if e, _ := s.Key(context.Background(), h); e.Presence != authz.Absent {
		t.Fatalf("Key() = %v; want absent", e)
	}
	s.keys.rc.Wait()
	if _, _ = s.Key(context.Background(), h); s.Stats().Keys.NegativeHits != 1 {
		t.Fatalf("stats = %+v; want a negative hit", s.Stats().Keys)
	}
	l.set(h, present(7, authz.StateActive))
	waitFor(t, func() bool {
		e, _ := s.Key(context.Background(), h)
		return e.Presence == authz.Present
	})
}

func TestApplyBeatsSlowerOlderLoad(t *testing.T) {
	l := newFakeLoader()
	l.gate = make(chan struct{})
	h := hashOf("sk_live_f")
	l.set(h, present(1, authz.StateActive))
	s := newTestStore(t, Config{Loader: l})
	got := make(chan authz.KeyEntry)
	go func() {
		e, _ := s.Key(context.Background(), h)
		got <- e
	}()
	waitFor(t, func() bool { return s.Stats().Keys.Misses == 1 })
	l.set(h, present(2, authz.StateRevoked)) // the bucket, then the watch
	s.ApplyKey(h, present(2, authz.StateRevoked))
	close(l.gate) // the load in flight read revision 1 and returns it now
	if e := <-got; e != present(2, authz.StateRevoked) {
		t.Fatalf("Key() during a change = %v; want revision 2 revoked", e)
	}
	s.keys.rc.Wait()
	if e, _ := s.Key(context.Background(), h); e != present(2, authz.StateRevoked) {
		t.Fatalf("Key() after = %v; want revision 2 revoked", e)
	}
}

func TestOlderChangeIsIgnored(t *testing.T) {
	s := newTestStore(t, Config{Loader: newFakeLoader()})
	h := hashOf("sk_live_g")
	s.ApplyKey(h, present(5, authz.StateRevoked))
	s.ApplyKey(h, present(4, authz.StateActive))
	if e, _ := s.Key(context.Background(), h); e.Revision != 5 {
		t.Fatalf("Key() = %v; want revision 5", e)
	}
}

// TestCachedKeyStaysCachedAfterChange: a change of a cached key is stored in
// ristretto after its pin is released, so that the key stays a hit.
func TestCachedKeyStaysCachedAfterChange(t *testing.T) {
	l := newFakeLoader()
	h := hashOf("sk_live_h")
	l.set(h, present(1, authz.StateActive))
	s := newTestStore(t, Config{Loader: l})
	if e, _ := s.Key(context.Background(), h); e.Revision != 1 {
		t.Fatalf("Key() = %v; want revision 1", e)
	}
	s.keys.rc.Wait()
	l.set(h, present(2, authz.StateSuspended))
	s.ApplyKey(h, present(2, authz.StateSuspended))
	if e, _ := s.Key(context.Background(), h); e.Revision != 2 {
		t.Fatalf("Key() = %v; want revision 2", e)
	}
	waitFor(t, func() bool { return s.Stats().Keys.Pins == 0 })
	before := l.loads.Load()
	if e, _ := s.Key(context.Background(), h); e.Revision != 2 {
		t.Fatalf("Key() after the pin = %v; want revision 2", e)
	}
	if l.loads.Load() != before {
		t.Errorf("a changed key that was cached should stay cached, not be loaded again")
	}
}

func TestResetForgetsEverything(t *testing.T) {
	l := newFakeLoader()
	h := hashOf("sk_live_i")
	l.set(h, present(9, authz.StateActive))
	s := newTestStore(t, Config{Loader: l})
	s.Key(context.Background(), h)
	s.keys.rc.Wait()
	s.ApplyKey(hashOf("sk_live_j"), present(10, authz.StateRevoked))
	l.set(h, present(2, authz.StateSuspended)) // the bucket was recreated
	s.Reset()
	if e, _ := s.Key(context.Background(), h); e != present(2, authz.StateSuspended) {
		t.Fatalf("Key() after Reset = %v; want the reloaded entry", e)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Loader: newFakeLoader(), MaxBytes: 1000},
		{Loader: newFakeLoader(), LoadTimeout: -time.Second},
		{Loader: newFakeLoader(), NegativeTTL: -time.Second},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) = nil error; want an error", cfg)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
