package events

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// endReason says why a watch ended.
type endReason uint8

const (
	endFailed           endReason = iota // could not subscribe, or lost before catching up
	endCaughtUpThenLost                  // lost after catching up: retry from a short backoff
	endReconnected                       // the connection came back: resume at once
	endRecreated                         // the bucket was recreated: resync at once
	endStalled                           // the probe found the watch quiet behind the stream: re-create at once
	endCanceled                          // Run's context ended
)

// restartReason is what the probe asks of the watch loop.
type restartReason uint8

const (
	restartStalled restartReason = iota + 1 // re-create the watch, resuming
	restartFull                             // resync fully: the bucket was recreated or purged
)

// restart asks the watch loop to end its watch; several requests before it
// looks coalesce, a full resync winning.
func (w *Watcher) restart(r restartReason) {
	if r == restartFull {
		w.mu.Lock()
		w.needFull = true
		w.mu.Unlock()
	}
	select {
	case w.restarts <- r:
	default:
	}
}

// watchOnce subscribes and consumes one watch until it ends.
func (w *Watcher) watchOnce(ctx context.Context, reconnected <-chan struct{}) (endReason, error) {
	kw, err := w.subscribe(ctx)
	if err != nil {
		return endFailed, w.watchErr(err)
	}
	defer w.stopWatch(kw)
	return w.consume(ctx, kw, reconnected)
}

// subscribe creates a watch resuming after the last applied revision, or a
// full one (after resetting the sink) when resuming could miss a change.
func (w *Watcher) subscribe(ctx context.Context) (jetstream.KeyWatcher, error) {
	info, err := w.streamInfo(ctx)
	if err != nil {
		return nil, err
	}
	lazy, err := w.lazyFor(ctx, info)
	if err != nil {
		return nil, err
	}
	select {
	case <-w.restarts: // asked of the watch being replaced (a full resync also sets needFull)
	default:
	}
	opts, full := w.watchFrom(ctx, info, lazy)
	kw, err := w.kv.WatchAll(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if full {
		w.mu.Lock()
		w.needFull = false
		w.mu.Unlock()
	}
	w.progressed(w.last.Load()) // a new watch gets StallTimeout to deliver before it counts as stalled
	w.touch()
	return kw, nil
}

// watchFrom decides where a new watch starts: after the last applied
// revision, or from scratch after resetting the sink. From scratch is a
// lazy start when lazy is set (build.go), else a full watch that replays
// until it catches up; the probe fills no gap meanwhile.
func (w *Watcher) watchFrom(ctx context.Context, info *jetstream.StreamInfo, lazy *lazyStart) ([]jetstream.WatchOpt, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := w.last.Load()
	if w.needFull || last == 0 || cannotResume(info, w.created, last) || w.lostRecords(info) {
		w.resetSink()
		w.created = info.Created
		if lazy != nil && !w.fullNext {
			w.startBuild(ctx, lazy)
			w.needFull, w.replaying = false, false
			return []jetstream.WatchOpt{jetstream.ResumeFromRevision(lazy.upTo + 1)}, false
		}
		w.needFull, w.replaying, w.fullNext = true, true, false // until the replay is subscribed
		return nil, true
	}
	w.replaying = false
	return []jetstream.WatchOpt{jetstream.ResumeFromRevision(last + 1)}, false
}

// cannotResume reports whether a watch resumed after revision last could miss
// a change: the stream was recreated (another creation time, or fewer
// messages than we saw) or purged past what we have seen. Compaction of
// rewritten keys can also move the first sequence; a needless full resync is
// the price of never missing a removed delete marker.
func cannotResume(info *jetstream.StreamInfo, created time.Time, last uint64) bool {
	return recreated(info, created, last) || info.State.FirstSeq > last+1
}

func recreated(info *jetstream.StreamInfo, created time.Time, last uint64) bool {
	return !info.Created.Equal(created) || info.State.LastSeq < last
}

// lostRecords reports whether the stream holds fewer messages than the
// distinct KV keys applied since the last full sync. With one value per key,
// every key applied keeps a message (its value or its delete marker) unless
// records were removed without a marker: a purge of the stream, an expiry,
// a removal of delete markers. The watch is never told of those, so only a
// full resync can forget them; a needless one is the price.
func (w *Watcher) lostRecords(info *jetstream.StreamInfo) bool {
	held, _ := w.index.len()
	return uint64(held) > info.State.Msgs
}

func (w *Watcher) resetSink() {
	if w.build != nil {
		w.endBuild(w.build, false)
	}
	w.epoch++
	w.index.reset()
	w.last.Store(0)
	w.terminal.reset() // tombstones are learnt again from the replay
	if !w.applied {
		return
	}
	w.log.Warn("kv bucket cannot be resumed; resyncing fully")
	w.sink.Reset()
	w.applied = false
	if f := w.cfg.Observer.Resync; f != nil {
		f()
	}
}

func (w *Watcher) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, max(2*w.cfg.ProbeInterval, checkTimeout))
	defer cancel()
	st, err := w.kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		return nil, errors.New("bucket status without stream info")
	}
	return bs.StreamInfo(), nil
}

// consume applies the watch's entries until it ends.
func (w *Watcher) consume(ctx context.Context, kw jetstream.KeyWatcher, reconnected <-chan struct{}) (endReason, error) {
	for {
		select {
		case <-ctx.Done():
			return endCanceled, nil
		case <-reconnected:
			return endReconnected, nil
		case e, ok := <-kw.Updates():
			switch {
			case !ok:
				return w.lostReason(), ErrUpdatesClosed
			case e == nil:
				w.caughtUp()
			default:
				w.applyLive(e)
			}
		case r := <-w.restarts:
			if r == restartFull {
				return endRecreated, errRecreated
			}
			return w.stalledReason(), errStalled
		}
	}
}

// applyLive applies an entry unless one at least as new was applied already
// (the probe may have read it by sequence first).
func (w *Watcher) applyLive(e jetstream.KeyValueEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applyNewer(e)
}

// applyNewer applies e unless an entry at least as new was applied; the
// caller holds w.mu.
func (w *Watcher) applyNewer(e jetstream.KeyValueEntry) {
	if e.Revision() > w.last.Load() {
		w.apply(e)
	}
}

// stalledReason is how a watch the probe ended counts: lost after catching
// up (resume at once) or before.
func (w *Watcher) stalledReason() endReason {
	if w.live.Load() {
		return endStalled
	}
	return endFailed
}

func (w *Watcher) lostReason() endReason {
	if w.live.Load() {
		return endCaughtUpThenLost
	}
	return endFailed
}

func (w *Watcher) caughtUp() {
	w.mu.Lock()
	w.replaying = false
	if w.build == nil {
		w.index.complete.Store(true) // a full replay, or a resume of one, has caught up
	}
	w.mu.Unlock()
	w.live.Store(true)
	w.touch()
	w.initial.Store(true) // Ready follows once the probe proves the watch current
	select {
	case w.probeNow <- struct{}{}: // prove the states fresh now, not at the next tick
	default:
	}
}

// checkTimeout is the least time a stream info request is given.
const checkTimeout = 250 * time.Millisecond

// errStalled and errRecreated end a watch found wrong by the probe.
var (
	errStalled   = errors.New("watch stalled behind the stream")
	errRecreated = errors.New("bucket was recreated or purged")
)

// stopWatch stops a watch and drains it: the NATS client delivers under a
// lock and would block forever on a full channel nobody reads.
func (w *Watcher) stopWatch(kw jetstream.KeyWatcher) {
	if err := kw.Stop(); err != nil {
		w.log.Debug("stop kv watch", "err", err)
	}
	timeout := time.NewTimer(stopTimeout)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-kw.Updates():
			if !ok {
				return
			}
		case <-timeout.C:
			w.log.Warn("kv watch did not close after stop")
			return
		}
	}
}

func (w *Watcher) touch() { w.activity.Store(time.Now().UnixNano()) }
