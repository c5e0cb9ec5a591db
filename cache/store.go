package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"golang.org/x/time/rate"

	"github.com/footstep/authz/authz"
)

// Defaults for Config.
const (
	DefaultMaxBytes    = 256 << 20
	DefaultNegativeTTL = time.Minute
	DefaultLoadTimeout = 500 * time.Millisecond
)

// DefaultRecentWindow was the default of Config.RecentWindow.
//
// Deprecated: Config.RecentWindow is ignored.
const DefaultRecentWindow = 5 * time.Second

// bytesPerEntry is the memory one cached entry is budgeted at. An entry
// costs more at a million keys, about 290 bytes of heap with ristretto's
// maps and admission counters (BenchmarkStoreMemory); the
// budget is kept so that a --cache-size holds as many entries as it always
// has, and docs/operations.md says how to size memory around it.
const bytesPerEntry = 256

// accountShare is the part of the budget given to accounts; keys get the rest.
const accountShare = 8

// pinShare is the part of the entry budget that pins may take. Pins of
// changes live a millisecond or two; what fills them is loads ahead of a
// lagging watch.
const pinShare = 16

// tidyEvery is how often the janitor drains ristretto and releases pins and
// floors, while there are any; when there are none it sleeps until a table
// wakes it.
const tidyEvery = time.Millisecond

// minBytes is the smallest budget accepted.
const minBytes = 1 << 20

// Loader reads a state from the source of truth on a cache miss. An absent
// record is an Absent entry and a nil error; a failure is an error. A load
// must read the bucket at least as new as every change the watch applied
// before it started (through the stream leader, not a follower that may be
// behind): the Store guards against changes applied while a load runs and
// against loads ahead of the watch, not against loads behind it.
type Loader interface {
	LoadKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error)
	LoadAccount(ctx context.Context, id string) (authz.AccountEntry, error)
}

// Membership tells whether a key may have a record, without I/O (the
// watcher's index of key fingerprints).
type Membership interface {
	// MayExist reports false only for a key that certainly has no record.
	MayExist(h authz.KeyHash) bool
}

// unknownKey returns the table hook that answers certainly-absent keys.
func (c *Config) unknownKey() func(authz.KeyHash) bool {
	if c.Membership == nil {
		return nil
	}
	m := c.Membership
	return func(h authz.KeyHash) bool { return !m.MayExist(h) }
}

// Config configures a Store.
type Config struct {
	// Loader fills misses. Required.
	Loader Loader
	// Membership, when set, is asked on a key miss whether the key may
	// exist at all; a key that certainly does not is answered Absent from
	// memory, costing no load and none of the lookup budget, and is not
	// stored, so that a client spraying made-up keys neither reaches the
	// source of truth nor evicts real entries. Optional.
	Membership Membership
	// MaxBytes bounds the memory of cached entries, in bytes. Default 256 MiB.
	MaxBytes int64
	// NegativeTTL is how long an unknown key stays cached as unknown. A key
	// created later is seen at once through ApplyKey whatever this is.
	// Default 1 minute.
	NegativeTTL time.Duration
	// RecentWindow is ignored: a change is now kept outside ristretto until
	// ristretto has applied it, not for a fixed window.
	//
	// Deprecated: kept for source compatibility.
	RecentWindow time.Duration
	// LoadTimeout bounds one load from the Loader. Default 500 ms.
	LoadTimeout time.Duration
	// MaxLoadsPerSecond bounds the loads from the Loader, keys and accounts
	// together, so that a client spraying unknown keys cannot flood the
	// source of truth. A miss that finds the budget spent is not loaded and
	// reads as Unreadable with ErrLoadBudget, which fails closed (503).
	// Misses joining a load already in flight cost nothing. Zero (the
	// default) means no bound.
	MaxLoadsPerSecond float64
	// LoadBurst is how many loads may start at once above the steady rate.
	// Default: MaxLoadsPerSecond, at least 1.
	LoadBurst int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Loader == nil {
		return errors.New("cache: a Loader is required")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxBytes < minBytes {
		return fmt.Errorf("cache: size %d bytes is below the minimum of %d", c.MaxBytes, minBytes)
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = DefaultLoadTimeout
	}
	if c.NegativeTTL < 0 || c.LoadTimeout < 0 {
		return errors.New("cache: the negative TTL and the load timeout must be positive")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxLoadsPerSecond < 0 || c.LoadBurst < 0 {
		return errors.New("cache: the load budget and its burst must not be negative")
	}
	if c.MaxLoadsPerSecond > 0 && c.LoadBurst == 0 {
		c.LoadBurst = max(1, int(c.MaxLoadsPerSecond))
	}
	return nil
}

// newBudget returns the shared limiter of loads, nil when unbounded.
func (c *Config) newBudget() *rate.Limiter {
	if c.MaxLoadsPerSecond == 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(c.MaxLoadsPerSecond), c.LoadBurst)
}

// Store is the in-memory state of keys and accounts.
type Store struct {
	keys     *table[authz.KeyHash, authz.KeyEntry, keyBlob]
	accounts *table[string, authz.AccountEntry, *accountSlot]
	// loadKey and loadAccount are the Loader's methods, bound once: a
	// method value built per call would allocate on every read.
	loadKey     func(context.Context, authz.KeyHash) (authz.KeyEntry, error)
	loadAccount func(context.Context, string) (authz.AccountEntry, error)
	wake        chan struct{} // a table holds something again; the janitor resumes
	stop        chan struct{}
	done        chan struct{}
}

// New returns a Store and starts its janitor. Call Close when done.
func New(cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	items := cfg.MaxBytes / bytesPerEntry
	return newStore(cfg, items-items/accountShare, items/accountShare)
}

// newStore returns a Store with room for the given numbers of keys and
// accounts; tests use it for caches smaller than any budget New accepts.
func newStore(cfg Config, keyItems, accountItems int64) (*Store, error) {
	seed := maphash.MakeSeed()
	budget := cfg.newBudget()
	wake := make(chan struct{}, 1)
	keys, err := newTable(tableConfig[authz.KeyHash, authz.KeyEntry, keyBlob]{
		items: keyItems, pinCap: pinCap(keyItems), cfg: &cfg, budget: budget, wake: wake,
		hash:        keyHash,
		pack:        packKey,
		unpack:      unpackKey,
		revision:    func(e authz.KeyEntry) uint64 { return e.Revision },
		absent:      func(e authz.KeyEntry) bool { return e.Presence == authz.Absent },
		unknown:     cfg.unknownKey(),
		absentEntry: authz.KeyEntry{Presence: authz.Absent},
	})
	if err != nil {
		return nil, err
	}
	accounts, err := newTable(tableConfig[string, authz.AccountEntry, *accountSlot]{
		items: accountItems, pinCap: pinCap(accountItems), cfg: &cfg, budget: budget, wake: wake,
		hash:     func(id string) uint64 { return maphash.String(seed, id) },
		pack:     packAccount,
		unpack:   unpackAccount,
		revision: func(e authz.AccountEntry) uint64 { return e.Revision },
		absent:   func(e authz.AccountEntry) bool { return e.Presence == authz.Absent },
	})
	if err != nil {
		keys.close()
		return nil, err
	}
	s := &Store{keys: keys, accounts: accounts, loadKey: cfg.Loader.LoadKey, loadAccount: cfg.Loader.LoadAccount,
		wake: wake, stop: make(chan struct{}), done: make(chan struct{})}
	go s.janitor(tidyEvery)
	return s, nil
}

// pinCap is how many pins one shard of a table with room for items entries
// keeps: a sixteenth of the entries, at least 16 a shard.
func pinCap(items int64) int {
	return int(max(16, items/pinShare/shardCount))
}

// Key returns the state of the key with hash h, loading it on a miss. On a
// failed load it returns an Unreadable entry and the error; the failure is
// not cached.
func (s *Store) Key(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	return s.keys.get(ctx, h, s.loadKey)
}

// Account returns the state of the account id, loading it on a miss.
func (s *Store) Account(ctx context.Context, id string) (authz.AccountEntry, error) {
	return s.accounts.get(ctx, id, s.loadAccount)
}

// ApplyKey records a change of the key with hash h, as seen by the watch,
// which applies revisions in increasing order. A change older than the
// revision held for the key is ignored.
func (s *Store) ApplyKey(h authz.KeyHash, e authz.KeyEntry) { s.keys.apply(h, e) }

// ApplyAccount records a change of the account id, as seen by the watch.
func (s *Store) ApplyAccount(id string, e authz.AccountEntry) { s.accounts.apply(id, e) }

// Reset forgets every entry, for a full resynchronisation after the bucket
// was recreated or purged: revisions start over. Loads in flight when it is
// called are not cached. Call it between changes, not during one.
func (s *Store) Reset() {
	s.keys.reset()
	s.accounts.reset()
}

// Stats returns counters of the Store's activity since New.
func (s *Store) Stats() Stats {
	return Stats{Keys: s.keys.stats(), Accounts: s.accounts.stats()}
}

// Close stops the janitor and releases the caches. The Store must not be
// used afterwards.
func (s *Store) Close() {
	close(s.stop)
	<-s.done
	s.keys.close()
	s.accounts.close()
}

// janitor tidies both tables every tick while either holds something, and
// sleeps until woken when neither does, until Close.
func (s *Store) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for receive(s.stop, t.C) {
		if keys, accounts := s.keys.tidy(), s.accounts.tidy(); keys || accounts {
			continue
		}
		if !receive(s.stop, s.wake) { // nothing held: sleep until a table holds something
			return
		}
	}
}

// receive waits for a value from c and reports true, or reports false when
// stop is closed first.
func receive[T any](stop <-chan struct{}, c <-chan T) bool {
	select {
	case <-stop:
		return false
	case <-c:
		return true
	}
}
