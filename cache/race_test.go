package cache

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
)

// truth is the source of truth for the race tests: the bucket (every key's
// history of entries by revision) and a watch that delivers its changes in
// order, but late.
type truth struct {
	mu        sync.Mutex
	rev       uint64
	current   map[authz.KeyHash]authz.KeyEntry
	history   map[authz.KeyHash][]authz.KeyEntry
	byRev     map[uint64]written // every entry ever written, by revision
	queue     []authz.KeyEntry   // written, not yet delivered by the watch
	queueKeys []authz.KeyHash
	delivered uint64 // the watch's position
}

func newTruth() *truth {
	return &truth{current: map[authz.KeyHash]authz.KeyEntry{}, history: map[authz.KeyHash][]authz.KeyEntry{}, byRev: map[uint64]written{}}
}

// LoadKey reads the current entry, then stalls for a random while, so that
// the entry it returns is often stale by the time it arrives, as a slow
// key-value Get would be. It is often ahead of the watch too.
func (tr *truth) LoadKey(_ context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	tr.mu.Lock()
	e := tr.current[h]
	tr.mu.Unlock()
	if rand.IntN(4) == 0 {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	}
	return e, nil
}

func (tr *truth) LoadAccount(context.Context, string) (authz.AccountEntry, error) {
	return authz.AccountEntry{Presence: authz.Absent}, nil
}

// change writes the next revision of h, as a publisher would, and queues it
// for the watch.
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
	tr.byRev[e.Revision] = written{h, e}
	tr.queue = append(tr.queue, e)
	tr.queueKeys = append(tr.queueKeys, h)
	return e
}

// deliver hands up to n queued changes to apply, oldest first.
func (tr *truth) deliver(n int, apply func(authz.KeyHash, authz.KeyEntry)) {
	tr.mu.Lock()
	n = min(n, len(tr.queue))
	es, hs := tr.queue[:n:n], tr.queueKeys[:n:n]
	tr.queue, tr.queueKeys = tr.queue[n:], tr.queueKeys[n:]
	if n > 0 {
		tr.delivered = es[n-1].Revision
	}
	tr.mu.Unlock()
	for i := range es {
		apply(hs[i], es[i])
	}
}

// older returns an entry of h the watch delivered before its latest one, for
// an out-of-order change.
func (tr *truth) older(h authz.KeyHash) (authz.KeyEntry, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var old []authz.KeyEntry
	for _, e := range tr.history[h] {
		if e.Revision <= tr.delivered {
			old = append(old, e)
		}
	}
	if len(old) < 2 {
		return authz.KeyEntry{}, false
	}
	return old[rand.IntN(len(old)-1)], true
}

// resync is a full resynchronisation: the queue is dropped and every key's
// current entry is replayed in revision order.
func (tr *truth) resync(hashes []authz.KeyHash, apply func(authz.KeyHash, authz.KeyEntry)) {
	tr.mu.Lock()
	tr.queue, tr.queueKeys = nil, nil
	tr.delivered = tr.rev
	last := tr.rev
	byRev := make(map[uint64]authz.KeyHash, len(hashes))
	for _, h := range hashes {
		byRev[tr.current[h].Revision] = h
	}
	cur := make(map[authz.KeyHash]authz.KeyEntry, len(hashes))
	for h, e := range tr.current {
		cur[h] = e
	}
	tr.mu.Unlock()
	for rev := uint64(0); rev <= last; rev++ {
		if h, ok := byRev[rev]; ok {
			apply(h, cur[h])
		}
	}
}

// valid reports whether e is the state of h at its revision.
func (tr *truth) valid(h authz.KeyHash, e authz.KeyEntry) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	w, ok := tr.byRev[e.Revision]
	return ok && w.h == h && w.e == e
}

type written struct {
	h authz.KeyHash
	e authz.KeyEntry
}

// raceConfig shapes one run of the race: the store's sizes and how the
// watch lags.
type raceConfig struct {
	name       string
	keys       int   // distinct keys
	items      int64 // ristretto's room for keys
	pinCap     int
	lag        int // changes the watch holds back, on average
	outOfOrder bool
}

// TestNoStaleReadUnderRacingChanges is invariant 1 of DESIGN.md and more: no
// reader ever sees a revision of a key older than one already applied or
// read, while loads race changes for the same few keys, the watch lags
// behind the loads and now and then delivers an old change again, ristretto
// evicts and rejects Sets in a tiny cache, shards run out of pins, and the
// store is reset.
func TestNoStaleReadUnderRacingChanges(t *testing.T) {
	for _, rc := range []raceConfig{
		{name: "roomy", keys: 48, items: 1 << 12, pinCap: 1 << 10, lag: 1},
		{name: "lagging watch", keys: 48, items: 1 << 12, pinCap: 1 << 10, lag: 64, outOfOrder: true},
		{name: "tiny cache", keys: 200, items: 16, pinCap: 1 << 10, lag: 32, outOfOrder: true},
		{name: "pins overflow", keys: 600, items: 64, pinCap: 1, lag: 64, outOfOrder: true},
	} {
		t.Run(rc.name, func(t *testing.T) { raceChangesAndLoads(t, rc) })
	}
}

// pick returns one of hashes, a hot few half of the time, so that a hot key
// often has several changes queued behind a lagging watch.
func pick(hashes []authz.KeyHash) authz.KeyHash {
	if rand.IntN(2) == 0 {
		return hashes[rand.IntN(min(8, len(hashes)))]
	}
	return hashes[rand.IntN(len(hashes))]
}

func newRaceStore(tb testing.TB, loader Loader, keyItems int64) *Store {
	tb.Helper()
	cfg := Config{Loader: loader, MaxBytes: minBytes, LoadTimeout: 10 * time.Millisecond}
	if err := cfg.setDefaults(); err != nil {
		tb.Fatal(err)
	}
	s, err := newStore(cfg, keyItems, 16)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func raceChangesAndLoads(t *testing.T, rc raceConfig) {
	const readers = 8
	iterations := 4000
	if testing.Short() {
		iterations = 600
	}
	tr := newTruth()
	hashes := make([]authz.KeyHash, rc.keys)
	seen := make(map[authz.KeyHash]*atomic.Uint64, rc.keys)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("sk_live_race_%d", i))
		seen[hashes[i]] = new(atomic.Uint64)
		tr.change(hashes[i])
	}
	s := newRaceStore(t, tr, rc.items)
	s.keys.pinCap = rc.pinCap
	// observe raises what readers may no longer go below.
	observe := func(h authz.KeyHash, rev uint64) {
		for v := seen[h].Load(); v < rev && !seen[h].CompareAndSwap(v, rev); v = seen[h].Load() {
		}
	}
	apply := func(h authz.KeyHash, e authz.KeyEntry) {
		s.ApplyKey(h, e)
		observe(h, e.Revision)
		runtime.Gosched() // let readers in between changes
	}
	tr.deliver(rc.keys, apply)

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
				h := pick(hashes)
				floor := seen[h].Load()
				e, err := s.Key(context.Background(), h)
				reads.Add(1)
				if err != nil {
					continue
				}
				if e.Revision < floor || !tr.valid(h, e) {
					if violations.Add(1) <= 5 {
						t.Errorf("Key() = %+v after revision %d was applied or read", e, floor)
					}
				}
				observe(h, e.Revision)
				runtime.Gosched() // leave the watch its share of two cores
			}
		}()
	}
	for i := 0; i < iterations; i++ {
		tr.change(pick(hashes))
		if rand.IntN(rc.lag) == 0 {
			tr.deliver(math.MaxInt, apply) // the watch catches up after lagging
		}
		if rc.outOfOrder && i%5 == 0 {
			h := hashes[rand.IntN(len(hashes))]
			if e, ok := tr.older(h); ok {
				s.ApplyKey(h, e) // a redelivered old change
			}
		}
		if i%8 == 0 {
			time.Sleep(50 * time.Microsecond) // let loads start between changes
		}
		if i%64 == 0 {
			s.keys.tidy()
		}
		if i%1000 == 999 {
			s.Reset()
			tr.resync(hashes, apply)
		}
	}
	close(stop)
	wg.Wait()
	st := s.Stats().Keys
	t.Logf("%d changes, %d reads, %d violations; stats %+v", iterations, reads.Load(), violations.Load(), st)
	if st.Loads == 0 || st.Pins == 0 && st.Drains == 0 {
		t.Errorf("the race was not exercised: loads %d, drains %d", st.Loads, st.Drains)
	}
	if rc.pinCap == 1 && (st.Overflows == 0 || st.Withheld == 0) {
		t.Errorf("pins did not overflow: overflows %d, withheld %d", st.Overflows, st.Withheld)
	}
	if rc.items <= 64 && st.Evicted+st.Rejected == 0 {
		t.Errorf("the tiny cache neither evicted nor rejected a Set")
	}
}
