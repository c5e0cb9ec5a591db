package events

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	usageShards       = 64
	numCodes          = int(authz.CodeOK) + 1
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
// into the usage bucket. Record is cheap and never blocks on NATS; Run does
// the publishing. It is safe for concurrent use; Run runs until its context
// ends, then publishes what is left.
type UsageRecorder struct {
	cfg      UsageConfig
	log      *slog.Logger
	tracked  atomic.Int64 // entries in all shards
	shards   [usageShards]usageShard
	flushing sync.Mutex         // one flush at a time
	bucket   jetstream.KeyValue // under flushing
}

type usageShard struct {
	mu      sync.Mutex
	entries map[uint64]*usageEntry // by the hash's first 8 bytes: a cheaper map key
	_       [40]byte               // keeps neighbouring shards' locks off one cache line
}

// usageEntry is one key's use in the current interval.
type usageEntry struct {
	hash             authz.KeyHash
	keyID, accountID string
	first, last      int64 // Unix nanoseconds
	counts           [numCodes]uint64
}

// NewUsageRecorder returns a UsageRecorder, or an error if cfg is incomplete.
func NewUsageRecorder(cfg UsageConfig) (*UsageRecorder, error) {
	switch {
	case cfg.NATS == nil:
		return nil, errors.New("usage recorder needs a NATS connection")
	case cfg.MaxKeys < 0 || cfg.Interval < 0:
		return nil, fmt.Errorf("usage recorder: max keys %d and interval %v must not be negative", cfg.MaxKeys, cfg.Interval)
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
	for i := range u.shards {
		u.shards[i].entries = make(map[uint64]*usageEntry)
	}
	return u, nil
}

// Record notes that the key with hash h and record rec was decided with
// code at instant at. It takes one short lock of one of 64 shards.
func (u *UsageRecorder) Record(h authz.KeyHash, rec authz.KeyRecord, code authz.Code, at time.Time) {
	if int(code) >= numCodes {
		code = authz.CodeUnavailable
	}
	ns := at.UnixNano()
	s := &u.shards[h[8]%usageShards]
	s.mu.Lock()
	e := u.entry(s, h, rec, ns)
	if e != nil {
		e.first, e.last = min(e.first, ns), max(e.last, ns)
		e.counts[code]++
	}
	s.mu.Unlock()
	if f := u.cfg.Observer.Overflow; e == nil && f != nil {
		f()
	}
}

// entry returns h's entry in s, adding it while fewer than MaxKeys are
// tracked; nil when there is no room. s.mu is held.
func (u *UsageRecorder) entry(s *usageShard, h authz.KeyHash, rec authz.KeyRecord, ns int64) *usageEntry {
	k := binary.LittleEndian.Uint64(h[:8])
	if e := s.entries[k]; e != nil {
		if e.hash != h {
			return nil // two keys whose hashes share their first 64 bits (never seen): overflow
		}
		return e
	}
	if u.tracked.Add(1) > int64(u.cfg.MaxKeys) {
		u.tracked.Add(-1)
		return nil
	}
	e := &usageEntry{hash: h, keyID: rec.KeyID, accountID: rec.AccountID, first: ns, last: ns}
	s.entries[k] = e
	return e
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

// take empties every shard and returns their summaries.
func (u *UsageRecorder) take() []KeyUsage {
	var sums []KeyUsage
	for i := range u.shards {
		s := &u.shards[i]
		s.mu.Lock()
		entries := s.entries
		if len(entries) > 0 {
			s.entries = make(map[uint64]*usageEntry, len(entries))
			u.tracked.Add(-int64(len(entries)))
		}
		s.mu.Unlock()
		for _, e := range entries {
			sums = append(sums, u.summary(e.hash, e))
		}
	}
	return sums
}

func (u *UsageRecorder) summary(h authz.KeyHash, e *usageEntry) KeyUsage {
	counts := make(map[string]uint64, 2)
	for c, n := range e.counts {
		if n > 0 {
			counts[authz.Code(c).String()] = n
		}
	}
	return KeyUsage{
		KeyID: e.keyID, AccountID: e.accountID, KeyHash: h.String(),
		FirstSeen: time.Unix(0, e.first).UTC(), LastSeen: time.Unix(0, e.last).UTC(),
		Counts: counts, Replica: u.cfg.Replica,
	}
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
