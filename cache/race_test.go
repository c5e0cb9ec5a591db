package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
)

// truth is the source of truth for the race test: every key's history of
// entries by revision, and the newest revision the watch has applied.
type truth struct {
	mu      sync.Mutex
	rev     uint64
	current map[authz.KeyHash]authz.KeyEntry
	history map[authz.KeyHash][]authz.KeyEntry
	applied map[authz.KeyHash]*atomic.Uint64
}

// LoadKey reads the current entry, then stalls for a random while, so that
// the entry it returns is often stale by the time it arrives, as a slow
// key-value Get would be.
func (tr *truth) LoadKey(_ context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	tr.mu.Lock()
	e := tr.current[h]
	tr.mu.Unlock()
	if e.Presence == authz.Absent {
		e.Revision = 0 // a key-value Get of a deleted key carries no revision
	}
	if rand.IntN(4) == 0 {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	}
	return e, nil
}

func (tr *truth) LoadAccount(context.Context, string) (authz.AccountEntry, error) {
	return authz.AccountEntry{Presence: authz.Absent}, nil
}

// change makes the next revision of h and returns it, as a publisher would.
func (tr *truth) change(h authz.KeyHash) authz.KeyEntry {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.rev++
	e := authz.KeyEntry{Revision: tr.rev, Presence: authz.Absent}
	if n := rand.IntN(4); n > 0 {
		e.Presence = authz.Present
		e.Record = authz.KeyRecord{KeyID: "k", AccountID: "a", State: []authz.KeyState{authz.StateActive, authz.StateSuspended, authz.StateRevoked}[n-1]}
	}
	tr.current[h] = e
	tr.history[h] = append(tr.history[h], e)
	return e
}

// acceptable reports whether e is the state of h at some revision at or after
// min. Absent entries loaded from the store carry no revision, so they are
// compared by content.
func (tr *truth) acceptable(h authz.KeyHash, e authz.KeyEntry, min uint64) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	hist := tr.history[h]
	for i := len(hist) - 1; i >= 0; i-- {
		s := hist[i]
		if s == e || e.Presence == authz.Absent && e.Revision == 0 && s.Presence == authz.Absent {
			return true
		}
		if s.Revision <= min {
			break
		}
	}
	return false
}

// TestNoStaleReadUnderRacingChanges is invariant 1 of DESIGN.md: once a change
// at revision r has been applied, no read returns an older revision, while
// loads race changes for the same few keys, ristretto drops and evicts Sets
// in a tiny cache, and shards overflow their recent-change maps.
func TestNoStaleReadUnderRacingChanges(t *testing.T) {
	for _, tt := range []struct {
		name      string
		recentCap int
	}{
		{"remember changes", 1 << 10},
		{"forget when full", 1},
	} {
		t.Run(tt.name, func(t *testing.T) { raceChangesAndLoads(t, tt.recentCap) })
	}
}

func raceChangesAndLoads(t *testing.T, recentCap int) {
	const (
		nkeys   = 48
		readers = 8
	)
	iterations := 3000
	if testing.Short() {
		iterations = 500
	}
	tr := &truth{current: map[authz.KeyHash]authz.KeyEntry{}, history: map[authz.KeyHash][]authz.KeyEntry{}, applied: map[authz.KeyHash]*atomic.Uint64{}}
	hashes := make([]authz.KeyHash, nkeys)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("sk_live_race_%d", i))
		tr.applied[hashes[i]] = new(atomic.Uint64)
		e := tr.change(hashes[i])
		tr.applied[hashes[i]].Store(e.Revision)
	}
	s := newTestStore(t, Config{Loader: tr, MaxBytes: minBytes, RecentWindow: 20 * time.Millisecond, LoadTimeout: 10 * time.Millisecond})
	s.keys.recentCap = recentCap
	for _, h := range hashes {
		e := tr.current[h]
		s.ApplyKey(h, e)
	}

	stop := make(chan struct{})
	var violations, reads atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := hashes[rand.IntN(nkeys)]
				min := tr.applied[h].Load()
				e, err := s.Key(context.Background(), h)
				reads.Add(1)
				if err == nil && !tr.acceptable(h, e, min) {
					violations.Add(1)
					t.Errorf("Key() = %+v after revision %d was applied", e, min)
				}
			}
		}()
	}
	for i := 0; i < iterations; i++ {
		h := hashes[rand.IntN(nkeys)]
		e := tr.change(h)
		s.ApplyKey(h, e) // what the watch does when the change arrives
		tr.applied[h].Store(e.Revision)
		if i%8 == 0 {
			time.Sleep(50 * time.Microsecond) // let loads start between changes
		}
		if i%64 == 0 {
			s.keys.prune()
		}
		if i%1000 == 999 {
			s.Reset()
			for _, h := range hashes {
				tr.mu.Lock()
				e := tr.current[h]
				tr.mu.Unlock()
				s.ApplyKey(h, e) // a full resync replays every key
			}
		}
	}
	close(stop)
	wg.Wait()
	st := s.Stats().Keys
	t.Logf("%d changes, %d reads, %d violations; stats %+v", iterations, reads.Load(), violations.Load(), st)
	if st.Loads == 0 || recentCap == 1 && st.Forgets == 0 {
		t.Errorf("the race was not exercised: loads %d, forgets %d", st.Loads, st.Forgets)
	}
}
