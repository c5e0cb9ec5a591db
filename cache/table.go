package cache

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/time/rate"
)

// shardCount spreads the locks that serialize fills against changes.
const shardCount = 256

type tableConfig[K comparable, V any, S stored] struct {
	items    int64
	pinCap   int // most pins kept per shard
	cfg      *Config
	budget   *rate.Limiter // shared by both tables; nil when loads are unbounded
	wake     chan struct{} // the janitor's, shared by both tables
	hash     func(K) uint64
	revision func(V) uint64
	absent   func(V) bool
	// pack packs an entry for ristretto with its stamp (entry.go); it
	// reports false for one it cannot give back exactly, which is not
	// cached. unpack gives it back, and reports false for another key's.
	pack   func(K, V, stamp) (S, bool)
	unpack func(K, S) (V, bool)
	// unknown, when set, reports whether a key certainly has no record, so
	// that a miss is answered with absentEntry from memory: no load, no
	// lookup budget, nothing stored.
	unknown     func(K) bool
	absentEntry V
}

// table is one kind of entry (keys or accounts), held packed as S: a
// ristretto cache for the bulk, and per shard the pins (pins.go) and the
// loads in flight.
type table[K comparable, V any, S stored] struct {
	tableConfig[K, V, S]
	rc     *ristretto.Cache[uint64, S]
	shards [shardCount]shard[K, V]
	// position is the highest revision applied since the last Reset. The
	// watch applies revisions in increasing order, so it has delivered
	// every revision up to here.
	position atomic.Uint64
	cycles   atomic.Uint64 // drains started
	drained  atomic.Uint64 // highest drain finished: what was issued before it started has landed
	pinned   atomic.Int64  // pins held, all shards together
	floored  atomic.Int64  // floors held, all shards together
	// unsettled is set by every Set; the janitor drains when it finds it.
	unsettled atomic.Bool
	counts    counters
}

type shard[K comparable, V any] struct {
	mu      sync.RWMutex
	npins   atomic.Int32  // len(pins), read without the lock on the hot path
	nfloors atomic.Int32  // len(floors), read without the lock by the janitor
	resets  atomic.Uint64 // Resets of this shard, written under mu: its epoch; a load spanning one is retried
	// setMark is the drain cycle current at the shard's last Set: until a
	// drain passes it, a Set of this shard may still be queued.
	setMark uint64
	// closed is set, under mu, before ristretto is closed: a load finishing
	// afterwards answers its callers and caches nothing.
	closed bool
	// ahead is the highest revision read ahead of the watch that found no
	// room for a floor (floors.go).
	ahead    uint64
	pins     map[K]pin[V]
	floors   map[K]uint64
	inflight map[K]*call[V]
}

// call is one load in flight; others asking for the same key wait on done.
type call[V any] struct {
	done    chan struct{}
	entry   V
	err     error
	applied uint64 // newest revision applied while the load ran; guarded by the shard lock
	// forgotten is set when the key was forgotten while the load ran
	// (ForgetKeys): what it read is not cached; guarded by the shard lock.
	forgotten bool
}

func newTable[K comparable, V any, S stored](tc tableConfig[K, V, S]) (*table[K, V, S], error) {
	if tc.items < 1 {
		tc.items = 1
	}
	t := &table[K, V, S]{tableConfig: tc}
	for i := range t.shards {
		t.shards[i].pins = make(map[K]pin[V])
		t.shards[i].floors = make(map[K]uint64)
		t.shards[i].inflight = make(map[K]*call[V])
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, S]{
		NumCounters:        admissionCounters(tc.items),
		MaxCost:            tc.items,
		BufferItems:        64,
		IgnoreInternalCost: true,
		ShouldUpdate:       t.newer,
		// Counted here rather than by ristretto's metrics, which cost an
		// atomic add on every Get, a map of admission times, and count a
		// Del or an expiry as an eviction.
		OnEvict:  t.evicted,
		OnReject: func(*ristretto.Item[S]) { t.counts.rejected.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	t.rc = rc
	return t, nil
}

// admissionCounters returns ristretto's NumCounters for a table of the given
// number of items: the power of two nearest to ten an item, the ratio
// ristretto's authors advise. ristretto rounds any other number up to a power
// of two, so ten an item became ten to twenty, and its admission sketch, 2
// bytes a counter, 20 to 40 bytes an item; nearest, it is 14 to 28. In
// BenchmarkAdmissionCounters' Zipf traces, fifteen counters an item instead
// of seven and a half hit 0.06 to 0.5 points more often.
func admissionCounters(items int64) int64 {
	want := items * 10
	up := int64(1) << bits.Len64(uint64(want-1))
	if up-want > want-up/2 {
		return up / 2
	}
	return up
}

// evicted counts what ristretto dropped: an entry evicted to stay within
// budget, or a negative entry whose time to live ran out (ristretto tells
// both through OnEvict; an expiry carries its expiration). An expiry of an
// entry no longer held (removed by a Del) drops nothing.
func (t *table[K, V, S]) evicted(i *ristretto.Item[S]) {
	var none S
	switch {
	case i.Value == none:
	case i.Expiration.IsZero():
		t.counts.evicted.Add(1)
	default:
		t.counts.expired.Add(1)
	}
}

// newer lets ristretto update a stored entry in place only forwards: to a
// revision at least as new, or over an entry stored before a Reset.
func (t *table[K, V, S]) newer(cur, prev S) bool {
	p := prev.stamped()
	return !t.shards[p.shard].holds(p.epoch) || cur.stamped().rev >= p.rev
}

// epoch numbers the shard's Resets, in 32 bits: an entry is the shard's while
// its epoch is the current one. Wrapping would take four billion Resets.
func (sh *shard[K, V]) epoch() uint32 { return uint32(sh.resets.Load()) }

// holds reports whether an entry stored in epoch e is still the shard's.
func (sh *shard[K, V]) holds(e uint32) bool { return e == sh.epoch() }

func (t *table[K, V, S]) shard(hk uint64) *shard[K, V] {
	return &t.shards[hk%shardCount]
}

// lockKey locks the shard of k for a change, counted in n, and returns k's
// hash and the shard; open is false, the shard left unlocked and nothing
// counted, when the store is closed.
func (t *table[K, V, S]) lockKey(k K, n *atomic.Uint64) (hk uint64, sh *shard[K, V], open bool) {
	hk = t.hash(k)
	sh = t.shard(hk)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return hk, sh, false
	}
	n.Add(1)
	return hk, sh, true
}

// cached returns the newest entry held in memory: a pin first, then
// ristretto. The pin is looked up before ristretto, so that a Set still
// queued when a change was applied cannot be read once the change is.
func (t *table[K, V, S]) cached(k K, hk uint64, sh *shard[K, V]) (V, bool) {
	if sh.npins.Load() > 0 {
		sh.mu.RLock()
		p, ok := sh.pins[k]
		sh.mu.RUnlock()
		if ok {
			return p.entry, !p.hidden
		}
	}
	if s, ok := t.rc.Get(hk); ok && sh.holds(s.stamped().epoch) {
		return t.unpack(k, s)
	}
	var zero V
	return zero, false
}

func (t *table[K, V, S]) get(ctx context.Context, k K, load func(context.Context, K) (V, error)) (V, error) {
	hk := t.hash(k)
	sh := t.shard(hk)
	if e, ok := t.cached(k, hk, sh); ok {
		t.counts.hit(t.absent(e))
		return e, nil
	}
	if t.unknown != nil && t.unknown(k) {
		t.counts.unknownHits.Add(1)
		return t.absentEntry, nil
	}
	t.counts.misses.Add(1)
	return t.fill(ctx, k, hk, sh, load)
}

// fill loads k once for all callers that miss it at the same time. The load
// runs on its own deadline, so that one caller giving up does not fail the
// others; each caller waits no longer than its own context.
func (t *table[K, V, S]) fill(ctx context.Context, k K, hk uint64, sh *shard[K, V], load func(context.Context, K) (V, error)) (V, error) {
	sh.mu.Lock()
	if p, ok := sh.pins[k]; ok && !p.hidden {
		sh.mu.Unlock()
		return p.entry, nil
	}
	c, ok := sh.inflight[k]
	if !ok {
		if t.budget != nil && !t.budget.Allow() {
			sh.mu.Unlock()
			t.counts.throttled.Add(1)
			var zero V
			return zero, ErrLoadBudget
		}
		c = &call[V]{done: make(chan struct{})}
		sh.inflight[k] = c
		go t.load(k, hk, sh, c, load)
	}
	sh.mu.Unlock()
	select {
	case <-c.done:
		return c.entry, c.err
	case <-ctx.Done():
		var zero V
		return zero, fmt.Errorf("wait for load: %w", ctx.Err())
	}
}

// ErrLoadBudget is returned for a miss that found Config.MaxLoadsPerSecond
// spent: the state was not read, so the request fails closed.
var ErrLoadBudget = errors.New("cache: key-value lookup budget exhausted; state not read")

// maxLoadAttempts bounds the reloads of a key whose load kept losing to a
// Reset or to a newer change that could not be shown.
const maxLoadAttempts = 3

// ErrOverrun is returned when every attempt to load a key was overtaken by a
// Reset or by a newer change: the answer could be stale, so there is none.
var ErrOverrun = errors.New("cache: changes outran the load; state unknown")

func (t *table[K, V, S]) load(k K, hk uint64, sh *shard[K, V], c *call[V], load func(context.Context, K) (V, error)) {
	var (
		e   V
		err error
	)
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.LoadTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		start := sh.resets.Load()
		e, err = load(ctx, k)
		t.counts.loads.Add(1)
		sh.mu.Lock()
		if err != nil {
			t.counts.loadErrors.Add(1)
		} else {
			e, err = t.settle(k, hk, sh, c, e, start)
		}
		if !errors.Is(err, ErrOverrun) || attempt+1 == maxLoadAttempts {
			// Settled and removed in one critical section: a call still in
			// inflight after its settle would hand its entry to a reader
			// arriving after a newer change was applied and its pin
			// released (seen in TestNoStaleReadUnderRacingChanges).
			delete(sh.inflight, k)
			c.entry, c.err = e, err
			sh.mu.Unlock()
			close(c.done)
			return
		}
		sh.mu.Unlock()
	}
}

// settle decides, under the shard lock, what a load that read e yields and
// what is cached. A pin at least as new wins; an older one is replaced. A
// newer change applied during the load but not shown asks for another load,
// as do a Reset and a ForgetKeys of the key. A load at or behind the watch's position is simply
// stored; one ahead of it leaves a floor (floors.go), so that the watch
// catching up with older revisions cannot take the key backwards.
func (t *table[K, V, S]) settle(k K, hk uint64, sh *shard[K, V], c *call[V], e V, start uint64) (V, error) {
	var zero V
	if sh.closed {
		return e, nil
	}
	if sh.resets.Load() != start || c.forgotten {
		c.forgotten = false
		t.counts.overruns.Add(1)
		return zero, ErrOverrun
	}
	rev := t.revision(e)
	if p, ok := sh.pins[k]; ok {
		// A load that began before a ForgetKeys of k was retried above; one
		// that began after it is the state to show, whatever its revision
		// (the loader's floors keep its reads fresh).
		if p.hidden || p.rev < rev {
			t.hold(k, hk, sh, e, true)
			return e, nil
		}
		t.counts.staleLoads.Add(1)
		return p.entry, nil
	}
	if c.applied > rev {
		t.counts.staleLoads.Add(1)
		t.counts.overruns.Add(1)
		return zero, ErrOverrun
	}
	if rev <= t.position.Load() {
		t.store(k, hk, sh, e)
		return e, nil
	}
	t.aheadOfWatch(k, hk, sh, e, rev)
	return e, nil
}

// store hands an entry to ristretto, packed; one that cannot be packed is
// not cached, like a Set ristretto drops. Callers hold the shard lock, so
// that no change of k is applied between their revision check and this Set.
func (t *table[K, V, S]) store(k K, hk uint64, sh *shard[K, V], e V) {
	s, ok := t.pack(k, e, stamp{rev: t.revision(e), epoch: sh.epoch(), shard: uint8(hk % shardCount)})
	if !ok {
		t.counts.droppedSets.Add(1)
		return
	}
	var ttl time.Duration
	if t.absent(e) {
		ttl = t.cfg.NegativeTTL
	}
	if !t.rc.SetWithTTL(hk, s, 1, ttl) {
		t.counts.droppedSets.Add(1)
	}
	sh.setMark = t.cycles.Load()
	if !t.unsettled.Swap(true) {
		t.nudge()
	}
}

// close closes ristretto once no shard will touch it again.
// nudge wakes the janitor if it sleeps.
func (t *table[K, V, S]) nudge() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *table[K, V, S]) close() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
	}
	t.rc.Close()
}
