package cache

import (
	"context"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// TestStartAtStoresLoadsWithoutFloors: after StartAt(rev), a load that reads
// a revision up to rev is behind the watch's position, so it leaves no floor
// and costs no drain; one beyond it still does.
func TestStartAtStoresLoadsWithoutFloors(t *testing.T) {
	l := testkit.NewStates()
	s := newTestStore(t, Config{Loader: l})
	s.StartAt(100)
	old, ahead := hashOf("sk_live_old"), hashOf("sk_live_ahead")
	l.PutKey(old, present(40, authz.StateActive))
	l.PutKey(ahead, present(120, authz.StateActive))
	for _, h := range []authz.KeyHash{old, ahead} {
		if _, err := s.Key(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats().Keys; st.Floors != 1 {
		t.Errorf("floors = %d; want 1 (only the load beyond the start)", st.Floors)
	}
	s.ApplyKey(hashOf("sk_live_other"), present(121, authz.StateActive))
	testkit.Eventually(t, 10*time.Second, "floor released once the watch passed it", func() bool { return s.Stats().Keys.Floors == 0 })
}

// TestStartAtForgetsLoads: StartAt empties the store. A lazy start applies
// no change up to its revision, so an entry loaded before it (a key, an
// account), which such a change may have outdated, is loaded again, and so
// is one whose load was in flight across it; it is not counted as a Reset.
func TestStartAtForgetsLoads(t *testing.T) {
	ctx := context.Background()
	l := testkit.NewStates()
	s := newTestStore(t, Config{Loader: l})
	cached, loading := hashOf("sk_live_cached"), hashOf("sk_live_loading")
	funded := authz.AccountEntry{Revision: 2, Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(t, "5")}}
	l.PutKey(cached, present(1, authz.StateActive))
	l.PutAccount("a1", funded)
	if _, err := s.Key(ctx, cached); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	s.keys.rc.Wait()
	s.accounts.rc.Wait()

	l.PutKey(loading, present(3, authz.StateActive))
	release, got := loadInFlight(t, s, l, loading)

	// Deleted, revoked and emptied up to the start: only loads tell.
	l.PutKey(cached, authz.KeyEntry{Revision: 4, Presence: authz.Absent})
	l.PutKey(loading, present(5, authz.StateRevoked))
	empty := authz.AccountEntry{Revision: 6, Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(t, "0")}}
	l.PutAccount("a1", empty)
	s.StartAt(6)
	release()
	if e, err := s.Key(ctx, cached); err != nil || e.Presence != authz.Absent {
		t.Errorf("a key loaded before StartAt = %+v, %v; want it loaded again (absent)", e, err)
	}
	if e := <-got; e != present(5, authz.StateRevoked) {
		t.Errorf("a load in flight across StartAt answered %+v; want the state read again", e)
	}
	if a, err := s.Account(ctx, "a1"); err != nil || a != empty {
		t.Errorf("an account loaded before StartAt = %+v, %v; want it loaded again", a, err)
	}
	if st := s.Stats().Keys; st.Resets != 0 || st.Floors != 0 {
		t.Errorf("resets %d, floors %d after StartAt; want 0, 0 (not a resync; loads up to the start are behind the watch)", st.Resets, st.Floors)
	}
}

// TestForgetKeys: a forgotten key is loaded again, whether it was cached
// from a load, pinned by a change just applied, or being loaded.
func TestForgetKeys(t *testing.T) {
	ctx := context.Background()
	l := testkit.NewStates()
	s := newTestStore(t, Config{Loader: l})
	cached, pinned, loading := hashOf("sk_live_cached"), hashOf("sk_live_pinned"), hashOf("sk_live_loading")
	l.PutKey(cached, present(3, authz.StateActive))
	if _, err := s.Key(ctx, cached); err != nil {
		t.Fatal(err)
	}
	s.keys.rc.Wait()
	s.ApplyKey(pinned, present(4, authz.StateActive))

	l.PutKey(cached, present(5, authz.StateRevoked))
	l.PutKey(pinned, present(5, authz.StateRevoked))
	s.ForgetKeys(5, cached, pinned)
	for _, h := range []authz.KeyHash{cached, pinned} {
		if e, err := s.Key(ctx, h); err != nil || e != present(5, authz.StateRevoked) {
			t.Errorf("Key after ForgetKeys = %+v, %v; want the state loaded again", e, err)
		}
	}

	l.PutKey(loading, present(6, authz.StateActive))
	release, got := loadInFlight(t, s, l, loading)
	l.PutKey(loading, present(7, authz.StateRevoked))
	s.ForgetKeys(7, loading)
	release()
	if e := <-got; e != present(7, authz.StateRevoked) {
		t.Errorf("a load in flight when its key was forgotten answered %+v; want the state read again", e)
	}
	if st := s.Stats().Keys; st.Forgotten != 3 || st.Overruns != 1 {
		t.Errorf("forgotten %d, overruns %d; want 3, 1", st.Forgotten, st.Overruns)
	}
}

// TestForgetHidesAQueuedSet: ForgetKeys removes a key from ristretto, but a
// Set of its earlier state queued before the removal may still land for a
// moment before the removal is processed. The key stays hidden until a drain
// shows that nothing can land: a read in that moment loads the key, and does
// not find the state the change replaced (an active key suspended, here).
func TestForgetHidesAQueuedSet(t *testing.T) {
	ctx := context.Background()
	s, l, h := newStoreWith(t, "sk_live_forget_queued", present(1, authz.StateActive))
	if _, err := s.Key(ctx, h); err != nil {
		t.Fatal(err)
	}
	s.keys.rc.Wait()
	stale, ok := s.keys.rc.Get(s.keys.hash(h))
	if !ok {
		t.Fatal("the key was not cached")
	}

	suspended := present(2, authz.StateSuspended)
	l.PutKey(h, suspended)
	s.keys.forgetOne(h, 2) // ForgetKeys, before its drain
	// The queued Set lands after the removal:
	hk := s.keys.hash(h)
	s.keys.rc.Set(hk, stale, 1)
	s.keys.rc.Wait()
	if got, err := s.Key(ctx, h); err != nil || got != suspended {
		t.Errorf("Key() after ForgetKeys = %v, %v; want %v, loaded", got, err, suspended)
	}
	if n := l.Lookups(); n != 2 {
		t.Errorf("lookups = %d; want 2 (the key loaded again)", n)
	}
}
