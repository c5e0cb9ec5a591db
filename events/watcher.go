package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// Sink receives every change the watcher sees, in revision order. Its methods
// are called one at a time, under the watcher's lock.
type Sink interface {
	// ApplyKey applies a key change: Present for a put that decodes,
	// Unreadable for one that does not, Absent (with the marker's revision)
	// for a delete or purge.
	ApplyKey(h authz.KeyHash, e authz.KeyEntry)
	// ApplyAccount applies an account change, with the outcomes of ApplyKey.
	ApplyAccount(id string, e authz.AccountEntry)
	// Reset forgets everything: a full resync follows.
	Reset()
}

// LazySink is a Sink that can start empty at a revision and forget keys.
// With one, the watcher starts at the bucket's current revision and builds
// its key index in the background, instead of replaying every value of the
// bucket before it is ready (build.go). The cache's Store is one.
type LazySink interface {
	Sink
	// StartAt empties the sink and tells it that the watch starts after
	// revision rev: no change up to rev will be applied to it. What it
	// holds from anything but the watch (loads of misses, made while no
	// watch had applied anything, so without a Reset since) must go too,
	// loads in flight included, since no change will correct it.
	StartAt(rev uint64)
	// ForgetKeys removes keys whose state changed at revision rev or before
	// in a way the watcher does not state, so that their next read loads
	// them.
	ForgetKeys(rev uint64, hs ...authz.KeyHash)
}

// WatchObserver receives what a Watcher does, for metrics. Nil funcs are
// skipped; they are called from the Run goroutine and must not block.
type WatchObserver struct {
	// Applied is called for each change applied after the initial replay,
	// with the time since the change was written to the bucket.
	Applied func(lag time.Duration)
	// BadRecord is called for each value that does not decode.
	BadRecord func()
	// Refused is called for each put that would have revived a revoked key.
	Refused func()
	// Resync is called when the sink is reset for a full resync.
	Resync func()
	// Stall is called when the watch is lost and must be re-created.
	Stall func()
}

// Watcher defaults.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	stopTimeout       = 2 * time.Second
)

// ErrWatcherRunning is returned by a second call to Run.
var ErrWatcherRunning = errors.New("watcher already running")

// ErrUpdatesClosed reports that the NATS client closed a watch's updates.
var ErrUpdatesClosed = errors.New("watch updates closed")

// WatcherConfig tunes a Watcher. Every field is optional.
type WatcherConfig struct {
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// Observer receives counts for metrics.
	Observer WatchObserver
	// MinBackoff and MaxBackoff bound the wait before re-creating a watch
	// that failed; defaults DefaultMinBackoff and DefaultMaxBackoff. The
	// wait doubles after each failure; a reconnect cuts it short.
	MinBackoff, MaxBackoff time.Duration
	// ProbeInterval is how often the bucket's stream is asked for its last
	// revision, to prove the cached states fresh (FreshAt), to notice a
	// watch that went quiet behind the stream and a recreated or purged
	// bucket; default DefaultProbeInterval.
	ProbeInterval time.Duration
	// StallTimeout is how long the watch may stay behind the stream without
	// progress before the gap is read from the stream leader and the watch
	// re-created; default DefaultStallTimeout.
	StallTimeout time.Duration
	// FullSync makes the watcher replay every value of the bucket before
	// it reports ready even when its sink is a LazySink; by default a
	// LazySink gets a lazy start (build.go).
	FullSync bool
	// BuildGate, when set, holds the background index build before every
	// batch it reads until the channel is closed, for tests that need a
	// build in progress. Nil (the default): no wait.
	BuildGate <-chan struct{}
}

// Watcher applies every change of a bucket to a Sink: first the latest value
// of every key (or, with a LazySink, nothing: it starts at the bucket's
// current revision and reads the history in the background), then each
// change as it happens. It re-creates its watch at once when the connection
// comes back, resuming after the last revision it applied, and resyncs fully
// when the bucket was recreated or purged.
type Watcher struct {
	conn *Conn
	kv   jetstream.KeyValue
	sink Sink
	cfg  WatcherConfig
	log  *slog.Logger

	ready     chan struct{}
	readyOnce sync.Once
	running   atomic.Bool
	initial   atomic.Bool // a first full sync completed
	live      atomic.Bool // the current watch has caught up
	last      atomic.Uint64
	activity  atomic.Int64 // unix nanoseconds

	lazy    LazySink       // nil: every full sync is a replay
	passes  sync.WaitGroup // index build passes running
	discard *slog.Logger

	// Written by the probe goroutine.
	seq         *seqReader
	restarts    chan restartReason
	probeNow    chan struct{} // asks the probe to ask the stream at once
	freshAt     atomic.Int64  // unix nanoseconds; see FreshAt
	contact     atomic.Int64  // unix nanoseconds; see LastContact
	progressRev atomic.Uint64 // revision the watch was at when last seen progressing
	progressAt  atomic.Int64  // unix nanoseconds of that
	probeDown   atomic.Bool
	index       *keyIndex

	// mu serializes what reaches the sink: the watch loop applies entries and
	// resets, the probe fills gaps. It guards the fields below.
	mu        sync.Mutex
	epoch     uint64    // full resyncs begun
	terminal  *terminal // revoked keys and tombstones (terminal.go); Store reads it
	rules     *rules    // applies changes of keys and tombstones to terminal and the sink
	quiet     *rules    // the same for history read by an index build: no sink
	build     *build    // the index build in progress after a lazy start; nil when none
	fullNext  bool      // the next full sync is a replay, not a lazy start
	created   time.Time // creation time of the stream last subscribed to
	needFull  bool
	applied   bool // the watch applied something since the sink's last Reset (loads fill it regardless: LazySink.StartAt empties it)
	replaying bool // the current watch is a full replay not yet caught up
}

// NewWatcher returns a Watcher of kv, on conn, feeding sink. Call Run.
func NewWatcher(conn *Conn, kv jetstream.KeyValue, sink Sink, cfg WatcherConfig) (*Watcher, error) {
	if conn == nil || kv == nil || sink == nil {
		return nil, errors.New("new watcher: conn, bucket and sink are required")
	}
	cfg.MinBackoff = cmpOrDur(cfg.MinBackoff, DefaultMinBackoff)
	cfg.MaxBackoff = max(cmpOrDur(cfg.MaxBackoff, DefaultMaxBackoff), cfg.MinBackoff)
	cfg.ProbeInterval = cmpOrDur(cfg.ProbeInterval, DefaultProbeInterval)
	cfg.StallTimeout = cmpOrDur(cfg.StallTimeout, DefaultStallTimeout)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		conn: conn, kv: kv, sink: sink, cfg: cfg,
		log:      log.With("bucket", kv.Bucket()),
		ready:    make(chan struct{}),
		seq:      newSeqReader(conn.NATS(), kv.Bucket()),
		restarts: make(chan restartReason, 1),
		probeNow: make(chan struct{}, 1),
		index:    newKeyIndex(),
		terminal: newTerminal(),
	}
	w.rules = &rules{t: w.terminal, keys: sink, writes: w, log: w.log, obs: &w.cfg.Observer}
	w.quiet = &rules{t: w.terminal, keys: discardKeys{}, writes: w, log: w.log, obs: &w.cfg.Observer}
	w.discard = slog.New(slog.DiscardHandler)
	if lazy, ok := sink.(LazySink); ok && !cfg.FullSync {
		w.lazy = lazy
	}
	return w, nil
}

// Ready returns a channel closed once the first sync has completed (the
// replay, or the live watch of a lazy start, has caught up) and JetStream
// has then confirmed that the watch is current (FreshAt).
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Synced reports whether the first full sync has completed and the watch is
// currently caught up and connected.
func (w *Watcher) Synced() bool {
	return w.initial.Load() && w.live.Load() && w.conn.Connected()
}

// LastRevision returns the revision of the last change applied.
func (w *Watcher) LastRevision() uint64 { return w.last.Load() }

// LastActivity returns when a change was last applied or a watch last
// (re)created; zero before either.
func (w *Watcher) LastActivity() time.Time {
	if ns := w.activity.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Run watches the bucket until ctx ends, then returns nil. It retries NATS
// failures itself, forever; it may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrWatcherRunning
	}
	reconnected, unsubscribe := w.conn.Reconnected()
	defer unsubscribe()
	defer w.live.Store(false)
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		w.probe(probeCtx)
	}()
	defer func() {
		stopProbe()
		<-probeDone
		w.passes.Wait()
	}()
	backoff := w.cfg.MinBackoff
	for {
		end, err := w.watchOnce(ctx, reconnected)
		w.live.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		switch end {
		case endReconnected, endRecreated, endStalled:
			backoff = w.cfg.MinBackoff
			continue
		case endCaughtUpThenLost:
			backoff = w.cfg.MinBackoff
		}
		w.lost(err, backoff)
		if !w.sleep(ctx, backoff, reconnected) {
			return nil
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

func (w *Watcher) lost(err error, backoff time.Duration) {
	w.log.Warn("kv watch lost; re-creating", "err", err, "backoff", backoff)
	if f := w.cfg.Observer.Stall; f != nil {
		f()
	}
}

// sleep waits about d (with jitter), less if the connection comes back.
func (w *Watcher) sleep(ctx context.Context, d time.Duration, reconnected <-chan struct{}) bool {
	d += rand.N(d/4 + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-reconnected:
	case <-t.C:
	}
	return true
}

func cmpOrDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// watchErr wraps an error with the bucket's name.
func (w *Watcher) watchErr(err error) error {
	return fmt.Errorf("watch bucket %s: %w", w.kv.Bucket(), err)
}
