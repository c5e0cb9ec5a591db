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
	endCanceled                          // Run's context ended
)

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
	last := w.last.Load()
	full := w.needFull || last == 0 || cannotResume(info, w.created, last) || w.lostRecords(info)
	var opts []jetstream.WatchOpt
	if full {
		w.resetSink()
		w.created = info.Created
	} else {
		opts = append(opts, jetstream.ResumeFromRevision(last+1))
	}
	kw, err := w.kv.WatchAll(ctx, opts...)
	if err != nil {
		return nil, err
	}
	w.needFull, w.replaying = false, full
	w.touch()
	return kw, nil
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
	return uint64(len(w.held)) > info.State.Msgs
}

func (w *Watcher) resetSink() {
	w.last.Store(0)
	clear(w.held)
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
	ctx, cancel := context.WithTimeout(ctx, w.cfg.CheckInterval)
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
	tick := time.NewTicker(w.cfg.CheckInterval)
	defer tick.Stop()
	var stall stallCheck
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
				w.apply(e)
			}
		case <-tick.C:
			if end, err := w.check(ctx, &stall); err != nil {
				return end, err
			}
		}
	}
}

func (w *Watcher) lostReason() endReason {
	if w.live.Load() {
		return endCaughtUpThenLost
	}
	return endFailed
}

func (w *Watcher) caughtUp() {
	w.replaying = false
	w.live.Store(true)
	w.touch()
	if !w.initial.Load() {
		w.initial.Store(true)
		w.readyOnce.Do(func() { close(w.ready) })
	}
}

// checkTimeout bounds the periodic check's status request: it is answered in
// well under a millisecond when NATS is up.
const checkTimeout = 250 * time.Millisecond

// errStalled and errRecreated end a watch found wrong by a periodic check.
var (
	errStalled   = errors.New("watch stalled behind the stream")
	errRecreated = errors.New("bucket was recreated or purged")
)

// stallCheck remembers the previous periodic check.
type stallCheck struct {
	behind bool
	last   uint64
}

// check compares the stream with what the watch delivered. It ends the watch
// when the bucket was recreated, or when the stream stayed ahead of a watch
// that made no progress for a whole interval.
//
// The check runs in the loop that applies changes, so it is skipped while
// disconnected and bounded by checkTimeout: a status request sent just as the
// connection dropped gets no answer, and waiting for it would hold back the
// resume on reconnect and every change after it.
func (w *Watcher) check(ctx context.Context, s *stallCheck) (endReason, error) {
	if !w.conn.Connected() {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	info, err := w.streamInfo(ctx)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrBucketNotFound):
		w.needFull = true
		return endFailed, err
	case err != nil:
		w.log.Warn("kv bucket check failed", "err", err)
		return 0, nil // the NATS client notices a lost connection itself
	}
	last := w.last.Load()
	if recreated(info, w.created, last) || w.lostRecords(info) {
		w.needFull = true
		return endRecreated, errRecreated
	}
	behind := info.State.LastSeq > last
	if behind && s.behind && last == s.last {
		return w.lostReason(), errStalled
	}
	s.behind, s.last = behind, last
	return 0, nil
}

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
