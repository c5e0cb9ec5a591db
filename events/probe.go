package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Probe defaults. A probe is one stream info request, answered by the
// stream leader in well under a millisecond.
const (
	DefaultProbeInterval = 200 * time.Millisecond
	DefaultStallTimeout  = 400 * time.Millisecond
	// peerActiveLimit is how long ago a stream replica may have last been
	// heard from by the leader and still count towards its quorum. Raft
	// heartbeats come every second; a leader cut off from its peers stops
	// counting them after this, before it steps down itself.
	peerActiveLimit = 2500 * time.Millisecond
)

// errNoQuorum reports a stream info answer from a leader that has not heard
// from a majority of its replicas lately: it may be partitioned into a
// minority, and what it says may be old.
var errNoQuorum = errors.New("stream leader has not heard from a quorum of its replicas")

// probeResult is one answer of the stream, with what the watcher had
// applied when it was asked: the answer reflects at least that much, so the
// checks for a recreated or purged bucket compare it with the snapshot, not
// with what the watch applied while the question was in flight.
type probeResult struct {
	sent  time.Time
	info  *jetstream.StreamInfo
	err   error
	asked probeSnapshot
}

// probeSnapshot is the watcher's state when a probe is sent.
type probeSnapshot struct {
	last  uint64 // revision applied
	held  int    // distinct KV keys applied since the last full sync
	epoch uint64 // full resyncs so far
}

func (w *Watcher) snapshot() probeSnapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	held, _ := w.index.len()
	return probeSnapshot{last: w.last.Load(), held: held, epoch: w.epoch}
}

// probe asks the stream for its state every ProbeInterval until ctx ends,
// and acts on each answer (see onProbe). It runs beside the watch loop, so
// that a watch that waits for a consumer, or a loop waiting out a backoff,
// never holds back freshness or the repair of a gap.
func (w *Watcher) probe(ctx context.Context) {
	w.progressed(w.last.Load()) // nothing counts as stalled before StallTimeout has passed
	t := time.NewTicker(w.cfg.ProbeInterval)
	defer t.Stop()
	for {
		w.onProbe(ctx, w.ask(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.probeNow:
		}
	}
}

// ask sends one stream info request and checks that its answer comes from a
// leader in touch with a quorum.
func (w *Watcher) ask(ctx context.Context) probeResult {
	p := probeResult{sent: time.Now(), asked: w.snapshot()}
	ctx, cancel := context.WithTimeout(ctx, max(2*w.cfg.ProbeInterval, checkTimeout))
	defer cancel()
	p.info, p.err = w.streamInfo(ctx)
	if p.err == nil {
		p.err = quorumErr(p.info)
	}
	return p
}

// quorumErr returns errNoQuorum when the leader that answered has heard from
// fewer than a majority of the stream's replicas (itself included) within
// peerActiveLimit. A stream of one replica always has its quorum.
func quorumErr(info *jetstream.StreamInfo) error {
	if info.Cluster == nil || len(info.Cluster.Replicas) == 0 {
		return nil
	}
	heard := 1 // the leader
	for _, p := range info.Cluster.Replicas {
		if p != nil && p.Current && !p.Offline && p.Active < peerActiveLimit {
			heard++
		}
	}
	if size := len(info.Cluster.Replicas) + 1; heard <= size/2 {
		return fmt.Errorf("%w (%d of %d)", errNoQuorum, heard, size)
	}
	return nil
}

// onProbe records what a stream answer proves and repairs what it shows:
//   - the bucket was recreated or purged: the watch loop resyncs;
//   - the watch has applied everything the stream held when asked: the
//     cached states are fresh as of the time the question was sent;
//   - the watch is behind and has made no progress for StallTimeout: the
//     missing changes are read by sequence from the stream leader and
//     applied at once, and the watch is re-created.
func (w *Watcher) onProbe(ctx context.Context, p probeResult) {
	if p.err != nil {
		if errors.Is(p.err, jetstream.ErrStreamNotFound) || errors.Is(p.err, jetstream.ErrBucketNotFound) {
			w.restart(restartFull)
		}
		w.probeFailed(p.err)
		return
	}
	w.contact.Store(p.sent.UnixNano())
	w.probeOK()
	w.mu.Lock()
	last, created, epoch := w.last.Load(), w.created, w.epoch
	replaying, initial := w.replaying, w.initial.Load()
	w.mu.Unlock()
	if epoch != p.asked.epoch {
		return // a full resync began while the question was in flight
	}
	if !created.IsZero() && (recreated(p.info, created, p.asked.last) || uint64(p.asked.held) > p.info.State.Msgs) {
		w.restart(restartFull)
		return
	}
	target := p.info.State.LastSeq
	switch {
	case target <= last:
		w.progressed(last)
		if initial && !replaying {
			w.markFresh(p.sent)
		}
	case !w.stalled(last):
	case initial && !replaying:
		if w.fillGap(ctx, epoch, last, target) {
			w.markFresh(p.sent)
		}
		w.restart(restartStalled)
	default:
		w.restart(restartStalled) // a replay that went quiet: start it again
	}
}

// progressed notes that the watch reached revision last; stalled reports
// whether it has been stuck below the stream's end at last for longer than
// StallTimeout.
func (w *Watcher) progressed(last uint64) {
	w.progressRev.Store(last)
	w.progressAt.Store(time.Now().UnixNano())
}

func (w *Watcher) stalled(last uint64) bool {
	if w.progressRev.Load() != last {
		w.progressed(last)
		return false
	}
	return time.Since(time.Unix(0, w.progressAt.Load())) > w.cfg.StallTimeout
}

// maxGapFill bounds the entries one probe reads by sequence; a longer gap is
// left to the re-created watch.
const maxGapFill = 4096

// fillGap reads the entries after revision from up to revision to from the
// stream leader and applies them in order, as long as the watch is still in
// epoch (a full resync that begins meanwhile owns the store: an entry the
// fill applied would raise the last revision past entries the replay must
// still apply). It reports whether it applied everything up to revision to.
func (w *Watcher) fillGap(ctx context.Context, epoch, from, to uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, max(4*w.cfg.ProbeInterval, time.Second))
	defer cancel()
	start := time.Now()
	next, n := from+1, 0
	for next <= to && n < maxGapFill {
		e, err := w.seq.next(ctx, next)
		switch {
		case errors.Is(err, errNoMessage):
			next = to + 1 // nothing from here on: nothing is missing
			continue
		case err != nil:
			w.log.Warn("kv watch stalled; reading the gap failed", "from", next, "to", to, "err", err)
			return false
		}
		if !w.applyGap(epoch, e) {
			w.log.Info("kv watch resyncing fully; the gap is left to the replay", "from", next, "to", to)
			return false
		}
		next, n = e.Revision()+1, n+1
	}
	w.log.Warn("kv watch stalled behind the stream; applied the gap from the stream leader",
		"from", from+1, "to", to, "entries", n, "took", time.Since(start).String())
	return next > to
}

// applyGap applies an entry read by sequence unless a full resync began after
// epoch or is replaying; it reports whether the watch is still in epoch.
func (w *Watcher) applyGap(epoch uint64, e jetstream.KeyValueEntry) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.epoch != epoch || w.replaying {
		return false
	}
	w.applyNewer(e)
	return true
}

// probeFailed and probeOK log a change between a stream that answers and
// one that does not, once each way.
func (w *Watcher) probeFailed(err error) {
	if w.probeDown.CompareAndSwap(false, true) {
		w.log.Warn("jetstream does not answer; cached states age from now", "err", err)
	}
}

func (w *Watcher) probeOK() {
	if w.probeDown.CompareAndSwap(true, false) {
		w.log.Info("jetstream answers again")
	}
}

// markFresh records that every change acknowledged before at is applied;
// the first time, the watcher is ready.
func (w *Watcher) markFresh(at time.Time) {
	w.freshAt.Store(at.UnixNano())
	w.readyOnce.Do(func() { close(w.ready) })
}

// FreshAt returns the time up to which the cached states are known to be
// current: every change the cluster acknowledged before it has been applied.
// Zero before the first full sync.
func (w *Watcher) FreshAt() time.Time { return unixTime(w.freshAt.Load()) }

// LastContact returns when the stream last answered with a quorum; zero
// before it ever did.
func (w *Watcher) LastContact() time.Time { return unixTime(w.contact.Load()) }

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
