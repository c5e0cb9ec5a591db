package events

import (
	"context"
	"errors"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A lazy start. A full sync replays every value of the bucket into the sink
// before the watcher reports ready: seconds per million keys. With a
// LazySink the watcher starts at the bucket's current revision instead, call
// it S:
//
//   - the live watch resumes after S, with values, and applies every change
//     in revision order from the start, so freshness holds as after a
//     replay, and the probe proves it the same way before Ready;
//   - the sink starts empty (LazySink.StartAt empties it: what misses
//     loaded before the start may be older than S, and nothing up to S is
//     applied to it) and loads keys on demand;
//   - a background pass reads the bucket's history up to S (build_pass.go)
//     into the key index (membership and revision floors) and the terminal
//     state. Both stay incomplete until it is done: MayExist rules nothing
//     out and Revoked vouches for nothing.
//
// While the index is being built:
//
//   - a miss is read with a snapshot read that proves the server answering
//     had applied S (snapshot_read.go), and the record's revision is checked
//     against the floor of any live change, as after a replay; its
//     revoked-is-terminal verdict is the rules run over the history the pass
//     has read, the live changes of the key and the snapshot
//     (build_verdict.go);
//   - the live watch applies deletions, revoked records, unreadable records
//     and accounts to the sink as usual, since their effect does not depend
//     on history. Any other change of a key or its tombstone may: it is kept
//     in order and the sink forgets the key, so that its next read gets a
//     verdict (build_live.go);
//   - the bucket writes of the rules wait (terminal.contest) for keys with
//     such changes, and run for the others.
//
// When the pass has read everything up to S, the changes kept go through the
// rules after the history, exactly as a replay followed by those changes
// would, the keys they touched are forgotten once more, and the index is
// complete: from then on the watcher works as after a full sync.

// build is an index build in progress; the watcher's mu guards its fields
// but the first four, set once.
type build struct {
	epoch    uint64             // the watcher's epoch when it began
	upTo     uint64             // S: the pass reads history up to here
	sentinel string             // a KV key with a message, for snapshot reads
	cancel   context.CancelFunc // stops the pass
	started  time.Time

	changes []jetstream.KeyValueEntry                   // live changes of keys and tombstones, in order
	byHash  map[authz.KeyHash][]jetstream.KeyValueEntry // the same, by key
	// firstKey is the first live change of each key's record; baseRev the
	// revision of the record it replaced, for the keys whose record the
	// pass has applied (historyLost).
	firstKey map[authz.KeyHash]jetstream.KeyValueEntry
	baseRev  map[authz.KeyHash]uint64
	pos      uint64             // highest revision the pass has applied
	consumer jetstream.Consumer // the pass reads from it; nil between consumers
	// sentBy and sentSeq are the server consumer that sent the message the
	// pass took last, and that message's consumer sequence (passCaughtUp).
	sentBy  string
	sentSeq uint64
	waiters int // reads waiting for the pass (passCaughtUp)
	// progress is closed, and replaced, when the pass applies an entry while
	// reads wait for it, and when the build ends.
	progress chan struct{}
	ended    bool
	complete bool // ended because the pass read everything (not a resync)
}

// lazyStart is where a lazy start begins. It is found before the watcher's
// lock is taken, since finding the sentinel reads the bucket.
type lazyStart struct {
	upTo     uint64
	sentinel string
}

// maxBuildChanges bounds the live changes kept while the index is being
// built; past it the watcher replays the bucket fully instead.
const maxBuildChanges = 1 << 18

// lazyFor returns where a lazy start would begin when a full sync is due
// and one is possible; nil means a replay (no LazySink, nothing in the
// bucket, direct gets off or not understood).
func (w *Watcher) lazyFor(ctx context.Context, info *jetstream.StreamInfo) (*lazyStart, error) {
	if w.lazy == nil || info.State.Msgs == 0 || !w.fullSyncDue(info) {
		return nil, nil
	}
	if !info.Config.AllowDirect {
		w.log.Warn("the bucket does not allow direct gets; replaying it fully at start")
		return nil, nil
	}
	// The sentinel: the KV key of the stream's first message, found in
	// constant time (the last message of a wildcard is a scan of every KV
	// key on the server). A KV key keeps a message until the bucket is
	// purged or recreated, which restarts the watch.
	first, err := w.seq.next(ctx, 1)
	switch {
	case errors.Is(err, errNoMessage):
		return nil, nil
	case err != nil:
		return nil, err
	}
	sentinel := first.Key()
	_, err = readSnapshot(ctx, w.conn.NATS(), w.kv.Bucket(), []string{sentinel})
	switch {
	case errors.Is(err, errSnapshotUnsupported), errors.Is(err, nats.ErrNoResponders):
		w.log.Warn("snapshot reads not supported (nats-server before 2.11?); replaying the bucket fully at start", "err", err)
		return nil, nil
	case err != nil && !errors.Is(err, errNoPosition):
		return nil, err
	}
	return &lazyStart{upTo: info.State.LastSeq, sentinel: sentinel}, nil
}

// fullSyncDue reports whether the next watch must start from scratch.
func (w *Watcher) fullSyncDue(info *jetstream.StreamInfo) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := w.last.Load()
	return w.needFull || last == 0 || cannotResume(info, w.created, last) || w.lostRecords(info)
}

// startBuild starts at ls: the sink holds nothing older, the watch resumes
// after it, and the pass reads the history up to it. Callers hold mu.
func (w *Watcher) startBuild(ctx context.Context, ls *lazyStart) {
	ctx, cancel := context.WithCancel(ctx)
	b := &build{epoch: w.epoch, upTo: ls.upTo, sentinel: ls.sentinel, cancel: cancel, started: time.Now(),
		byHash: make(map[authz.KeyHash][]jetstream.KeyValueEntry), firstKey: make(map[authz.KeyHash]jetstream.KeyValueEntry),
		baseRev: make(map[authz.KeyHash]uint64), progress: make(chan struct{})}
	w.build = b
	w.last.Store(ls.upTo)
	w.applied = true // loads may fill the sink from now on: a resync must reset it
	w.lazy.StartAt(ls.upTo)
	w.log.Info("watching from the bucket's current revision; building the key index in the background", "revision", ls.upTo)
	w.passes.Add(1)
	go w.runPass(ctx, b)
}

// endBuild ends b, complete or abandoned (a resync). Callers hold mu.
func (w *Watcher) endBuild(b *build, complete bool) {
	b.cancel()
	b.ended, b.complete = true, complete
	close(b.progress)
	if w.build == b {
		w.build = nil
	}
}

// completeBuild runs the live changes kept through the rules after the
// history the pass read, and makes the index complete. Callers hold mu.
func (w *Watcher) completeBuild(b *build) {
	w.terminal.uncontest() // the writes the rules ask for now are decided on everything
	for _, e := range b.changes {
		w.quiet.change(ParseKVKey(e.Key()), e)
	}
	w.terminal.advance(w.last.Load())
	w.endBuild(b, true)
	w.index.complete.Store(true)
	if len(b.byHash) > 0 {
		hs := make([]authz.KeyHash, 0, len(b.byHash))
		for h := range b.byHash {
			hs = append(hs, h)
		}
		w.lazy.ForgetKeys(w.last.Load(), hs...)
	}
	all, keys := w.index.len()
	w.log.Info("key index complete", "keys", keys, "records", all, "changes_during_build", len(b.changes),
		"took", time.Since(b.started).Round(time.Millisecond).String())
}

// Building reports whether the key index is being built in the background
// after a lazy start.
func (w *Watcher) Building() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.build != nil
}
