package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/time/rate"
)

// shardCount spreads the locks that serialize fills against changes.
const shardCount = 256

type tableConfig[K comparable, V any] struct {
	items     int64
	recentCap int // most recent changes kept per shard
	cfg       *Config
	budget    *rate.Limiter // shared by both tables; nil when loads are unbounded
	hash      func(K) uint64
	revision  func(V) uint64
	absent    func(V) bool
}

// table is one kind of entry (keys or accounts): a ristretto cache for the
// bulk, and per shard the recent changes and the loads in flight.
type table[K comparable, V any] struct {
	tableConfig[K, V]
	rc     *ristretto.Cache[uint64, slot[K, V]]
	shards [shardCount]shard[K, V]
	seq    atomic.Uint64 // stamps every Set and every forgetting, in order
	counts counters
}

// slot is what ristretto holds: the whole key, to rule out collisions of the
// 64-bit hash, and the sequence number of its Set, so that a shard can
// invalidate everything stored before a point without touching ristretto.
type slot[K comparable, V any] struct {
	key   K
	entry V
	seq   uint64
}

type shard[K comparable, V any] struct {
	mu       sync.RWMutex
	nrecent  atomic.Int32  // len(recent), read without the lock on the hot path
	validSeq atomic.Uint64 // slots stored before this are forgotten
	recent   map[K]*recent[V]
	inflight map[K]*call[V]
}

// recent is a change applied by the watch, authoritative until it is pruned.
type recent[V any] struct {
	entry    V
	at       time.Time
	accessed atomic.Bool
}

// call is one load in flight; others asking for the same key wait on done.
type call[V any] struct {
	done  chan struct{}
	entry V
	err   error
}

func newTable[K comparable, V any](tc tableConfig[K, V]) (*table[K, V], error) {
	if tc.items < 1 {
		tc.items = 1
	}
	t := &table[K, V]{tableConfig: tc}
	t.seq.Store(1)
	for i := range t.shards {
		t.shards[i].recent = make(map[K]*recent[V])
		t.shards[i].inflight = make(map[K]*call[V])
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, slot[K, V]]{
		NumCounters:        tc.items * 10,
		MaxCost:            tc.items,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Metrics:            true,
		ShouldUpdate:       t.newer,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	t.rc = rc
	return t, nil
}

// newer lets ristretto update a stored slot in place only forwards: to a
// revision at least as new, or over a slot that was forgotten.
func (t *table[K, V]) newer(cur, prev slot[K, V]) bool {
	return prev.seq < t.shard(t.hash(prev.key)).validSeq.Load() ||
		t.revision(cur.entry) >= t.revision(prev.entry)
}

func (t *table[K, V]) shard(hk uint64) *shard[K, V] {
	return &t.shards[hk%shardCount]
}

// cached returns the newest entry held in memory: a recent change first,
// then ristretto.
func (t *table[K, V]) cached(k K, hk uint64, sh *shard[K, V]) (V, bool) {
	if sh.nrecent.Load() > 0 {
		sh.mu.RLock()
		r, ok := sh.recent[k]
		var e V
		if ok {
			e = r.entry
			if !r.accessed.Load() {
				r.accessed.Store(true)
			}
		}
		sh.mu.RUnlock()
		if ok {
			return e, true
		}
	}
	s, ok := t.rc.Get(hk)
	if ok && s.key == k && s.seq >= sh.validSeq.Load() {
		return s.entry, true
	}
	var zero V
	return zero, false
}

func (t *table[K, V]) get(ctx context.Context, k K, load func(context.Context, K) (V, error)) (V, error) {
	hk := t.hash(k)
	sh := t.shard(hk)
	if e, ok := t.cached(k, hk, sh); ok {
		t.counts.hit(t.absent(e))
		return e, nil
	}
	t.counts.misses.Add(1)
	return t.fill(ctx, k, hk, sh, load)
}

// fill loads k once for all callers that miss it at the same time. The load
// runs on its own deadline, so that one caller giving up does not fail the
// others; each caller waits no longer than its own context.
func (t *table[K, V]) fill(ctx context.Context, k K, hk uint64, sh *shard[K, V], load func(context.Context, K) (V, error)) (V, error) {
	sh.mu.Lock()
	if r, ok := sh.recent[k]; ok {
		sh.mu.Unlock()
		return r.entry, nil
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

// maxLoadAttempts bounds the reloads of a key whose shard forgot its recent
// changes while a load was in flight.
const maxLoadAttempts = 3

// ErrOverrun is returned when a key's shard kept forgetting changes during
// every attempt to load it: the answer could be stale, so there is none.
var ErrOverrun = errors.New("cache: changes outran the load; state unknown")

func (t *table[K, V]) load(k K, hk uint64, sh *shard[K, V], c *call[V], load func(context.Context, K) (V, error)) {
	var (
		e   V
		err = ErrOverrun
	)
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.LoadTimeout)
	defer cancel()
	for attempt := 0; attempt < maxLoadAttempts && errors.Is(err, ErrOverrun); attempt++ {
		start := t.seq.Load()
		e, err = load(ctx, k)
		t.counts.loads.Add(1)
		if err != nil {
			t.counts.loadErrors.Add(1)
			break
		}
		sh.mu.Lock()
		e, err = t.settle(k, hk, sh, e, start)
		sh.mu.Unlock()
	}
	sh.mu.Lock()
	delete(sh.inflight, k)
	c.entry, c.err = e, err
	sh.mu.Unlock()
	close(c.done)
}

// settle decides, under the shard lock, what a load that read e yields: a
// change applied meanwhile with a newer revision wins, and only the winner is
// cached. When the shard forgot changes since the load started, the load
// may be stale and ErrOverrun asks for another.
func (t *table[K, V]) settle(k K, hk uint64, sh *shard[K, V], e V, start uint64) (V, error) {
	if r, ok := sh.recent[k]; ok {
		if t.revision(r.entry) >= t.revision(e) {
			t.counts.staleLoads.Add(1)
			return r.entry, nil
		}
		r.entry = e
	} else if sh.validSeq.Load() > start {
		t.counts.overruns.Add(1)
		var zero V
		return zero, ErrOverrun
	}
	t.store(k, hk, e)
	return e, nil
}

// store hands an entry to ristretto. Callers hold the shard lock, so that no
// change of k is applied between their revision check and this Set.
func (t *table[K, V]) store(k K, hk uint64, e V) {
	var ttl time.Duration
	if t.absent(e) {
		ttl = t.cfg.NegativeTTL
	}
	s := slot[K, V]{key: k, entry: e, seq: t.seq.Add(1)}
	if !t.rc.SetWithTTL(hk, s, 1, ttl) {
		t.counts.droppedSets.Add(1)
	}
}

// apply records a change from the watch and removes k from ristretto, whose
// Del also cancels any Set of k still queued in its buffer. The change is
// kept in the recent map, which reads consult first and loads are checked
// against; when the shard's map is full, the shard forgets everything it
// stored instead, which costs misses but never lets an older value be read.
func (t *table[K, V]) apply(k K, e V) {
	hk := t.hash(k)
	sh := t.shard(hk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t.counts.applied.Add(1)
	if r, ok := sh.recent[k]; ok {
		if t.revision(r.entry) > t.revision(e) {
			t.counts.staleChanges.Add(1)
			return
		}
		r.entry, r.at = e, t.cfg.Now()
	} else if len(sh.recent) < t.recentCap {
		sh.recent[k] = &recent[V]{entry: e, at: t.cfg.Now()}
		sh.nrecent.Store(int32(len(sh.recent)))
	} else {
		sh.validSeq.Store(t.seq.Add(1))
		t.counts.forgets.Add(1)
	}
	t.rc.Del(hk)
}

// prune drops recent changes older than the window. A change that was read
// meanwhile moves into ristretto, so that the key stays cached.
func (t *table[K, V]) prune() {
	cutoff := t.cfg.Now().Add(-t.cfg.RecentWindow)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for k, r := range sh.recent {
			if r.at.After(cutoff) {
				continue
			}
			if r.accessed.Load() {
				t.store(k, t.hash(k), r.entry)
			}
			delete(sh.recent, k)
		}
		sh.nrecent.Store(int32(len(sh.recent)))
		sh.mu.Unlock()
	}
}

// reset forgets everything. Loads in flight find their shard forgotten and
// load again.
func (t *table[K, V]) reset() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		clear(sh.recent)
		sh.nrecent.Store(0)
		sh.validSeq.Store(t.seq.Add(1))
		sh.mu.Unlock()
	}
	t.counts.resets.Add(1)
}

func (t *table[K, V]) close() { t.rc.Close() }
