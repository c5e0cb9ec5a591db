package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of UsageConfig.
const (
	// DefaultUsageInterval is how often a replica publishes what it
	// recorded: at most one summary per key per interval.
	DefaultUsageInterval = time.Minute
	// DefaultUsageMaxKeys bounds the keys tracked in one interval; the
	// checks of further keys are counted as overflow, not tracked.
	DefaultUsageMaxKeys = 20000
	// usageBatchSize is how many summaries one message carries (about
	// 300 bytes each).
	usageBatchSize = 200
	// usageFlushTimeout bounds the final flush at stop.
	usageFlushTimeout = 2 * time.Second
	numCodes          = int(authz.CodeOK) + 1
	// usageIdleIntervals is how many intervals in a row a key goes unused
	// before it stops being tracked, making room for another.
	usageIdleIntervals = 2
)

// UsageObserver is told what a UsageRecorder does, for metrics. Every
// field is optional.
type UsageObserver struct {
	// Published is called with the number of summaries in each message
	// published on UsageSubject.
	Published func(n int)
	// Overflow is called for a check of a key not tracked because
	// MaxKeys keys are tracked already in this interval.
	Overflow func()
	// StoreFailed is called for each summary that could not be merged
	// into the usage bucket.
	StoreFailed func()
}

// UsageConfig configures a UsageRecorder.
type UsageConfig struct {
	// NATS publishes the summaries on UsageSubject. Required.
	NATS *nats.Conn
	// Bucket is the usage bucket (OpenUsageBucket). When it is nil,
	// OpenBucket is called at each flush until it succeeds, so that a
	// bucket that cannot be created yet delays nothing at start; with
	// neither, summaries are only published.
	Bucket     jetstream.KeyValue
	OpenBucket func(context.Context) (jetstream.KeyValue, error)
	// Replica names this replica in summaries (the host name, typically).
	Replica string
	// MaxKeys bounds the keys tracked per interval; default DefaultUsageMaxKeys.
	MaxKeys int
	// Interval is how often summaries are published; default DefaultUsageInterval.
	Interval time.Duration
	// Observer is told of publications, overflows and failures.
	Observer UsageObserver
	// Logger receives a line per flush that failed; default discard.
	Logger *slog.Logger
}

// UsageRecorder records, in bounded memory, when each key was decided on
// and with which codes, and publishes it once per interval: one batch of
// summaries per usageBatchSize keys on UsageSubject, and each summary merged
// into the usage bucket. Record takes no lock for a tracked key (one atomic
// add, and a store of last_seen at most once a millisecond) and never blocks
// on NATS; Run does the publishing. It is safe for concurrent use; Run runs
// until its context ends, then publishes what is left.
type UsageRecorder struct {
	cfg      UsageConfig
	log      *slog.Logger
	table    atomic.Pointer[usageTable]
	mu       sync.Mutex         // adds entries, swaps tables
	flushing sync.Mutex         // one flush at a time
	bucket   jetstream.KeyValue // under flushing
}

// NewUsageRecorder returns a UsageRecorder, or an error if cfg is incomplete.
func NewUsageRecorder(cfg UsageConfig) (*UsageRecorder, error) {
	switch {
	case cfg.NATS == nil:
		return nil, errors.New("usage recorder needs a NATS connection")
	case cfg.MaxKeys < 0 || cfg.Interval < 0:
		return nil, fmt.Errorf("usage recorder: max keys %d and interval %v must not be negative", cfg.MaxKeys, cfg.Interval)
	case cfg.MaxKeys > math.MaxInt32: // a slot numbers its key in 32 bits
		return nil, fmt.Errorf("usage recorder: max keys %d above %d", cfg.MaxKeys, math.MaxInt32)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultUsageMaxKeys
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultUsageInterval
	}
	u := &UsageRecorder{cfg: cfg, log: cfg.Logger, bucket: cfg.Bucket}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.table.Store(newUsageTable(cfg.MaxKeys))
	return u, nil
}

// Record notes that the key with hash h and record rec was decided with
// code at instant at.
func (u *UsageRecorder) Record(h authz.KeyHash, rec authz.KeyRecord, code authz.Code, at time.Time) {
	if int(code) >= numCodes {
		code = authz.CodeUnavailable
	}
	ns := at.UnixNano()
	t := u.table.Load()
	s := t.find(h)
	for n := uint64(1); n > 0; {
		if s == nil {
			if s, t = u.add(h, rec); s == nil {
				u.overflow()
				return
			}
		}
		c := t.counter(s, code)
		s.record(c, ns, n)
		if !t.retired.Load() {
			return
		}
		// A flush replaced t, and may have drained it before this count:
		// take back what is left of it (Swap, so that neither this nor
		// the flush counts a use twice) and record it in the new table.
		n, s = c.Swap(0), nil
	}
}

func (u *UsageRecorder) overflow() {
	if f := u.cfg.Observer.Overflow; f != nil {
		f()
	}
}

// add tracks h in the current table, unless MaxKeys keys are tracked
// already, and returns its slot and the table.
func (u *UsageRecorder) add(h authz.KeyHash, rec authz.KeyRecord) (*usageSlot, *usageTable) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t := u.table.Load()
	if s := t.find(h); s != nil {
		return s, t
	}
	if t.n >= u.cfg.MaxKeys {
		return nil, t
	}
	return t.insert(h, &usageKey{keyID: rec.KeyID, accountID: rec.AccountID}), t
}

// Run publishes every interval until ctx ends, then publishes what is left
// within a few seconds.
func (u *UsageRecorder) Run(ctx context.Context) {
	t := time.NewTicker(u.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), usageFlushTimeout)
			u.flushLogged(fctx)
			cancel()
			return
		case <-t.C:
			u.flushLogged(ctx)
		}
	}
}

func (u *UsageRecorder) flushLogged(ctx context.Context) {
	if err := u.Flush(ctx); err != nil {
		u.log.Warn("usage summaries not all published", "err", err)
	}
}

// Flush takes what was recorded since the last flush and publishes it: the
// batches on UsageSubject, then each summary merged into the usage bucket.
// What fails to publish is counted and dropped: usage is advisory.
func (u *UsageRecorder) Flush(ctx context.Context) error {
	u.flushing.Lock()
	defer u.flushing.Unlock()
	sums := u.take()
	var errs []error
	for i := 0; i < len(sums); i += usageBatchSize {
		if err := u.publish(sums[i:min(i+usageBatchSize, len(sums))]); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := u.store(ctx, sums); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// take replaces the table with a new one and returns the summaries of the
// keys used in the old. The new table keeps every key but those unused for
// two intervals in a row; a key dropped and used again is added again.
// The old table is retired once the new one is in place and drained after
// that, so that a use counted in it is either drained or moved to the new
// table by its Record.
func (u *UsageRecorder) take() []KeyUsage {
	u.mu.Lock()
	defer u.mu.Unlock()
	old, next := u.table.Load(), newUsageTable(u.cfg.MaxKeys)
	for i := range old.slots {
		s := &old.slots[i]
		if s.key.Load() == 0 {
			continue
		}
		k, idle := old.keyOf(s), 0
		if !old.used(s) {
			if idle = k.idle + 1; idle >= usageIdleIntervals {
				continue
			}
		}
		next.insert(s.hash, &usageKey{keyID: k.keyID, accountID: k.accountID, idle: idle})
	}
	u.table.Store(next)
	old.retired.Store(true)
	var sums []KeyUsage
	for i := range old.slots {
		if s := &old.slots[i]; s.key.Load() != 0 {
			if sum, used := old.drain(s, u.cfg.Replica); used {
				sums = append(sums, sum)
			}
		}
	}
	return sums
}

func (u *UsageRecorder) publish(batch []KeyUsage) error {
	body, err := json.Marshal(UsageBatch{Replica: u.cfg.Replica, Keys: batch})
	if err == nil {
		err = u.cfg.NATS.Publish(UsageSubject, body)
	}
	if err != nil {
		return fmt.Errorf("publish %d usage summaries: %w", len(batch), err)
	}
	if f := u.cfg.Observer.Published; f != nil {
		f(len(batch))
	}
	return nil
}

// store merges each summary into the usage bucket; after the first failure
// that is not the key's own, the rest are dropped.
func (u *UsageRecorder) store(ctx context.Context, sums []KeyUsage) error {
	if len(sums) == 0 {
		return nil
	}
	if !u.cfg.NATS.IsConnected() { // do not wait out a timeout per summary
		u.storeFailed(len(sums))
		return fmt.Errorf("store usage: %d summaries: %w", len(sums), nats.ErrDisconnected)
	}
	if u.bucket == nil && u.cfg.OpenBucket != nil {
		kv, err := u.cfg.OpenBucket(ctx)
		if err != nil {
			u.storeFailed(len(sums))
			return err
		}
		u.bucket = kv
	}
	if u.bucket == nil {
		return nil
	}
	for i, s := range sums {
		h, _ := authz.ParseKeyHash(s.KeyHash)
		if err := StoreUsage(ctx, u.bucket, h, s); err != nil {
			u.storeFailed(len(sums) - i)
			return fmt.Errorf("store usage: %d of %d summaries: %w", len(sums)-i, len(sums), err)
		}
	}
	return nil
}

func (u *UsageRecorder) storeFailed(n int) {
	if f := u.cfg.Observer.StoreFailed; f != nil {
		for range n {
			f()
		}
	}
}
