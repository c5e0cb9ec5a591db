package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// TestLoadAheadOfWatchKeepsItsRevision is the defect found during a bulk
// import: the load read revision 10 from the bucket while the watch was
// still at 7, and the watch's revision 8 then took the key back. Reads must
// go revoked, revoked, revoked; not revoked, active, revoked ("denied,
// allowed, denied"), even when ristretto lost the loaded entry meanwhile.
func TestLoadAheadOfWatchKeepsItsRevision(t *testing.T) {
	for _, tt := range []struct {
		watch uint64
		evict bool
	}{{7, false}, {7, true}, {8, false}, {8, true}} {
		t.Run(fmt.Sprintf("watch=%d,evicted=%v", tt.watch, tt.evict), func(t *testing.T) {
			evict := tt.evict
			l := testkit.NewStates()
			h := hashOf("sk_live_bulk_import")
			s := newTestStore(t, Config{Loader: l})
			s.ApplyKey(hashOf("sk_live_other"), present(tt.watch, authz.StateActive)) // the watch's position
			l.PutKey(h, present(10, authz.StateRevoked))                              // the bucket is at 10
			steps := []struct {
				name  string
				apply authz.KeyEntry
			}{
				{"load", authz.KeyEntry{}},
				{"watch delivers 8", present(8, authz.StateActive)},
				{"watch delivers 10", present(10, authz.StateRevoked)},
			}
			for _, st := range steps {
				if st.apply.Revision > 0 {
					s.ApplyKey(h, st.apply)
				}
				if e, err := s.Key(context.Background(), h); err != nil || e != present(10, authz.StateRevoked) {
					t.Fatalf("after %s: Key() = %+v, %v; want revision 10 revoked", st.name, e, err)
				}
				if evict {
					s.keys.rc.Wait()
					s.keys.rc.Del(s.keys.hash(h)) // ristretto lets it go
				}
			}
			testkit.Eventually(t, 15*time.Second, "pins and floors released once the watch passed 10", func() bool { st := s.Stats().Keys; return st.Pins == 0 && st.Floors == 0 })
		})
	}
}

// TestOutOfOrderChangeIsNotShown: a change older than the watch's position,
// for a key nothing remembers, is not shown: it could be older than a read.
// The key is removed and the next read loads it.
func TestOutOfOrderChangeIsNotShown(t *testing.T) {
	l := testkit.NewStates()
	h := hashOf("sk_live_replayed")
	s := newTestStore(t, Config{Loader: l})
	l.PutKey(h, present(10, authz.StateRevoked))
	s.ApplyKey(h, present(10, authz.StateRevoked))
	testkit.Eventually(t, 15*time.Second, "key pins released", func() bool { return s.Stats().Keys.Pins == 0 })
	s.keys.rc.Del(s.keys.hash(h)) // evicted
	s.ApplyKey(h, present(8, authz.StateActive))
	if e, err := s.Key(context.Background(), h); err != nil || e != present(10, authz.StateRevoked) {
		t.Fatalf("Key() = %+v, %v; want revision 10 revoked", e, err)
	}
	if st := s.Stats().Keys; st.Withheld != 1 || l.Lookups() != 1 {
		t.Errorf("withheld %d, loads %d; want the change withheld and the key loaded", st.Withheld, l.Lookups())
	}
}

// TestBalanceChurnKeepsCacheWarm: 10,000 balance changes to other accounts
// cost the 20,000 warm accounts nothing. Before pins, one change past a
// shard's window made the shard forget: 16,978 of 20,000 were loaded again.
func TestBalanceChurnKeepsCacheWarm(t *testing.T) {
	const warm, churn = 20000, 10000
	l := testkit.NewStates()
	for i := range warm {
		l.PutAccount(fmt.Sprintf("acct_%d", i), authz.AccountEntry{Revision: uint64(i + 1), Presence: authz.Present})
	}
	s := newTestStore(t, Config{Loader: l, MaxBytes: 64 << 20})
	for i := range warm {
		s.ApplyAccount(fmt.Sprintf("acct_%d", i), authz.AccountEntry{Revision: uint64(i + 1), Presence: authz.Present}) // the watch's first sync
	}
	read := func() {
		t.Helper()
		for i := range warm {
			if e, err := s.Account(context.Background(), fmt.Sprintf("acct_%d", i)); err != nil || e.Revision != uint64(i+1) {
				t.Fatalf("Account(acct_%d) = %+v, %v", i, e, err)
			}
			if i%1000 == 999 {
				s.accounts.rc.Wait() // keep Sets from being dropped for a full buffer
			}
		}
		s.accounts.rc.Wait()
	}
	read()
	read()
	warmed := l.Lookups()
	for i := range churn {
		s.ApplyAccount(fmt.Sprintf("acct_other_%d", i), authz.AccountEntry{Revision: uint64(warm + i + 1), Presence: authz.Present})
	}
	testkit.Eventually(t, 15*time.Second, "account pins released", func() bool { return s.Stats().Accounts.Pins == 0 })
	read()
	if loads := l.Lookups() - warmed; loads > warm/100 {
		t.Errorf("%d of %d unchanged accounts loaded again after %d changes to others; want at most 1%%", loads, warm, churn)
	}
	t.Logf("loads: %d to warm, %d after the churn; stats %+v", warmed, l.Lookups()-warmed, s.Stats().Accounts)
}

// TestOutsideMemoryIsBounded: pins and floors stay within their per-shard
// room however many keys change or are read ahead of the watch, and a shard
// out of room withholds a late change rather than show it over a newer read.
func TestOutsideMemoryIsBounded(t *testing.T) {
	const n = 20000
	l := testkit.NewStates()
	s := newTestStore(t, Config{Loader: l, MaxBytes: minBytes})
	limit := uint64(s.accounts.pinCap * shardCount)
	for i := range n { // read ahead of a watch that has delivered nothing
		id := fmt.Sprintf("acct_%d", i)
		l.PutAccount(id, authz.AccountEntry{Revision: uint64(n + i), Presence: authz.Present})
		if e, err := s.Account(context.Background(), id); err != nil || e.Revision != uint64(n+i) {
			t.Fatalf("Account(%s) = %+v, %v", id, e, err)
		}
	}
	for i := range n { // changes of other accounts
		s.ApplyAccount(fmt.Sprintf("acct_other_%d", i), authz.AccountEntry{Revision: uint64(i + 1), Presence: authz.Present})
	}
	st := s.Stats().Accounts
	if st.Pins > limit || st.Floors > limit || st.Overflows == 0 {
		t.Fatalf("pins %d, floors %d (room %d), overflows %d; want both within room and some overflows", st.Pins, st.Floors, limit, st.Overflows)
	}
	// The watch now delivers an older change of every account read ahead.
	for i := range n {
		id := fmt.Sprintf("acct_%d", i)
		s.ApplyAccount(id, authz.AccountEntry{Revision: uint64(n + i - 1), Presence: authz.Absent})
		if e, err := s.Account(context.Background(), id); err != nil || e.Revision != uint64(n+i) {
			t.Fatalf("Account(%s) after a late change = %+v, %v; want revision %d", id, e, err, n+i)
		}
	}
	t.Logf("stats %+v", s.Stats().Accounts)
}
