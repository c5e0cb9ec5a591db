package cache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

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

// newStoreWith returns a store over a loader that holds key at e, and the
// key's hash.
func newStoreWith(tb testing.TB, key string, e authz.KeyEntry) (*Store, *testkit.States, authz.KeyHash) {
	tb.Helper()
	l, h := testkit.NewStates(), hashOf(key)
	l.PutKey(h, e)
	return newTestStore(tb, Config{Loader: l}), l, h
}

func present(rev uint64, state authz.KeyState) authz.KeyEntry {
	return authz.KeyEntry{Revision: rev, Presence: authz.Present,
		Record: authz.KeyRecord{KeyID: "key_1", AccountID: "acct_1", State: state}}
}

func hashOf(s string) authz.KeyHash { return authz.APIKey(s).Hash() }

// loadInFlight holds l's loads and starts s.Key(h) in the background; it
// returns once that load has begun, with the release of the hold and the
// channel that yields what the call answered.
func loadInFlight(t *testing.T, s *Store, l *testkit.States, h authz.KeyHash) (release func(), got <-chan authz.KeyEntry) {
	t.Helper()
	want := l.Lookups() + 1
	release = l.Hold()
	c := make(chan authz.KeyEntry, 1)
	go func() {
		e, _ := s.Key(context.Background(), h)
		c <- e
	}()
	testkit.Eventually(t, 15*time.Second, "load in flight", func() bool { return l.Lookups() == want })
	return release, c
}

func TestMissLoadsThenHits(t *testing.T) {
	s, l, h := newStoreWith(t, "sk_live_a", present(3, authz.StateActive))
	for i := 0; i < 3; i++ {
		e, err := s.Key(context.Background(), h)
		if err != nil || e != present(3, authz.StateActive) {
			t.Fatalf("Key() = %v, %v; want the loaded entry", e, err)
		}
		s.keys.rc.Wait()
	}
	if n := l.Lookups(); n != 1 {
		t.Errorf("loads = %d; want 1 (later reads are hits)", n)
	}
	if st := s.Stats().Keys; st.Hits != 2 || st.Misses != 1 {
		t.Errorf("stats = %+v; want 2 hits, 1 miss", st)
	}
}

func TestOneLoadInFlightPerKey(t *testing.T) {
	s, l, h := newStoreWith(t, "sk_live_b", present(1, authz.StateSuspended))
	release := l.Hold()
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
	testkit.Eventually(t, 15*time.Second, "50 misses waiting on one load", func() bool { return s.Stats().Keys.Misses == 50 })
	release()
	wg.Wait()
	if n := l.Lookups(); n != 1 {
		t.Errorf("loads = %d; want 1 for 50 concurrent misses", n)
	}
}

func TestCallerDeadlineDoesNotFailOthers(t *testing.T) {
	s, l, h := newStoreWith(t, "sk_live_c", present(1, authz.StateActive))
	release := l.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if e, err := s.Key(ctx, h); err == nil || e.Presence != authz.Unreadable {
		t.Fatalf("Key(cancelled) = %v, %v; want an unreadable entry and an error", e, err)
	}
	release()
	if e, err := s.Key(context.Background(), h); err != nil || e.Presence != authz.Present {
		t.Fatalf("Key() = %v, %v; want present", e, err)
	}
}

func TestLoadErrorIsNotCached(t *testing.T) {
	l := testkit.NewStates()
	l.Fail(errors.New("nats: no responders"))
	s := newTestStore(t, Config{Loader: l})
	h := hashOf("sk_live_d")
	for i := 0; i < 2; i++ {
		if e, err := s.Key(context.Background(), h); err == nil || e.Presence != authz.Unreadable {
			t.Fatalf("Key() = %v, %v; want unreadable with an error", e, err)
		}
		s.keys.rc.Wait()
	}
	if n := l.Lookups(); n != 2 {
		t.Errorf("loads = %d; want 2: a failure must not be cached", n)
	}
}

func TestNegativeEntryExpires(t *testing.T) {
	l := testkit.NewStates()
	s := newTestStore(t, Config{Loader: l, NegativeTTL: 20 * time.Millisecond})
	h := hashOf("sk_live_e")
	if e, _ := s.Key(context.Background(), h); e.Presence != authz.Absent {
		t.Fatalf("Key() = %v; want absent", e)
	}
	s.keys.rc.Wait()
	if _, _ = s.Key(context.Background(), h); s.Stats().Keys.NegativeHits != 1 {
		t.Fatalf("stats = %+v; want a negative hit", s.Stats().Keys)
	}
	l.PutKey(h, present(7, authz.StateActive))
	testkit.Eventually(t, 15*time.Second, "negative entry expired and the key loaded", func() bool {
		e, _ := s.Key(context.Background(), h)
		return e.Presence == authz.Present
	})
}

// TestExpiredIsNotEvicted: a negative entry dropped once its time to live
// ran out counts as expired, not as an eviction, which the "cache too
// small" alert reads. ristretto drops expired entries every few seconds.
func TestExpiredIsNotEvicted(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{Loader: testkit.NewStates(), NegativeTTL: 10 * time.Millisecond})
	if e, _ := s.Key(context.Background(), hashOf("sk_live_nobody")); e.Presence != authz.Absent {
		t.Fatalf("Key() = %v; want absent", e)
	}
	testkit.Eventually(t, time.Minute, "the negative entry dropped", func() bool { return s.Stats().Keys.Expired == 1 })
	if st := s.Stats().Keys; st.Evicted != 0 {
		t.Errorf("evicted = %d after an expiry; want 0", st.Evicted)
	}
}

func TestApplyBeatsSlowerOlderLoad(t *testing.T) {
	s, l, h := newStoreWith(t, "sk_live_f", present(1, authz.StateActive))
	release, got := loadInFlight(t, s, l, h)
	l.PutKey(h, present(2, authz.StateRevoked)) // the bucket, then the watch
	s.ApplyKey(h, present(2, authz.StateRevoked))
	release() // the load in flight read revision 1 and returns it now
	if e := <-got; e != present(2, authz.StateRevoked) {
		t.Fatalf("Key() during a change = %v; want revision 2 revoked", e)
	}
	s.keys.rc.Wait()
	if e, _ := s.Key(context.Background(), h); e != present(2, authz.StateRevoked) {
		t.Fatalf("Key() after = %v; want revision 2 revoked", e)
	}
}

func TestOlderChangeIsIgnored(t *testing.T) {
	s := newTestStore(t, Config{Loader: testkit.NewStates()})
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
	s, l, h := newStoreWith(t, "sk_live_h", present(1, authz.StateActive))
	if e, _ := s.Key(context.Background(), h); e.Revision != 1 {
		t.Fatalf("Key() = %v; want revision 1", e)
	}
	s.keys.rc.Wait()
	l.PutKey(h, present(2, authz.StateSuspended))
	s.ApplyKey(h, present(2, authz.StateSuspended))
	if e, _ := s.Key(context.Background(), h); e.Revision != 2 {
		t.Fatalf("Key() = %v; want revision 2", e)
	}
	testkit.Eventually(t, 15*time.Second, "key pins released", func() bool { return s.Stats().Keys.Pins == 0 })
	before := l.Lookups()
	if e, _ := s.Key(context.Background(), h); e.Revision != 2 {
		t.Fatalf("Key() after the pin = %v; want revision 2", e)
	}
	if l.Lookups() != before {
		t.Errorf("a changed key that was cached should stay cached, not be loaded again")
	}
}

func TestResetForgetsEverything(t *testing.T) {
	s, l, h := newStoreWith(t, "sk_live_i", present(9, authz.StateActive))
	s.Key(context.Background(), h)
	s.keys.rc.Wait()
	s.ApplyKey(hashOf("sk_live_j"), present(10, authz.StateRevoked))
	l.PutKey(h, present(2, authz.StateSuspended)) // the bucket was recreated
	s.Reset()
	if e, _ := s.Key(context.Background(), h); e != present(2, authz.StateSuspended) {
		t.Fatalf("Key() after Reset = %v; want the reloaded entry", e)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Loader: testkit.NewStates(), MaxBytes: 1000},
		{Loader: testkit.NewStates(), LoadTimeout: -time.Second},
		{Loader: testkit.NewStates(), NegativeTTL: -time.Second},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) = nil error; want an error", cfg)
		}
	}
}
