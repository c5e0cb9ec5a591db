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
	release := l.Hold()
	got := make(chan authz.KeyEntry, 1)
	go func() {
		e, _ := s.Key(ctx, loading)
		got <- e
	}()
	testkit.Eventually(t, 10*time.Second, "load in flight", func() bool { return l.Lookups() == 4 })
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
