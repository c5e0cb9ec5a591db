package events

import (
	"context"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// The watcher's own bucket writes keep "revoked is terminal" durable when
// keys are changed around the Publisher: it writes the tombstone of a key it
// saw revoked, writes a revived record back as revoked, and removes the
// tombstone of a deleted key. Every replica does, so one write wins and the
// others fail a revision check, which is fine: the change they lost to
// reaches them through the watch. The writes run off the apply path, each in
// its own goroutine bounded by bucketWriteTimeout, at most maxWritesInFlight
// at once; a write of a resync's earlier epoch is dropped.
const (
	bucketWriteTimeout = 2 * time.Second
	// writeDelay lets a Publisher's own write (the tombstone it writes
	// before the revoked record, or the record after its tombstone) reach
	// the watch first, so that replicas do not all race it for nothing.
	writeDelay = 100 * time.Millisecond
)

// spawn runs write off the apply path after delay, unless too many writes
// are in flight; a failed write is logged, a lost revision race is not.
func (w *Watcher) spawn(what string, h authz.KeyHash, delay time.Duration, write func(context.Context, uint64) error) {
	epoch := w.terminal.epoch.Load()
	select {
	case w.terminal.slots <- struct{}{}:
	default:
		w.log.Warn("too many bucket writes in flight; skipping one", "write", what, "key_hash", h.String())
		return
	}
	go func() {
		defer func() { <-w.terminal.slots }()
		if delay > 0 {
			t := time.NewTimer(delay)
			<-t.C
		}
		ctx, cancel := context.WithTimeout(context.Background(), bucketWriteTimeout)
		defer cancel()
		if err := write(ctx, epoch); err != nil && !conflict(err) {
			w.log.Warn("kv bucket write failed", "write", what, "key_hash", h.String(), "err", err)
		}
	}()
}

// writeTombstone creates the tombstone of a key held as revoked, unless one
// is known by the time the write runs.
func (w *Watcher) writeTombstone(h authz.KeyHash, t Tombstone) {
	w.spawn("create tombstone", h, writeDelay, func(ctx context.Context, epoch uint64) error {
		g, guarded, ok := w.terminal.current(h, epoch)
		if !ok || !guarded || g.tombRev != 0 {
			return nil
		}
		val, err := EncodeTombstone(t)
		if err != nil {
			return err
		}
		_, err = w.kv.Create(ctx, TombstoneSubject(h), val)
		return err
	})
}

// removeTombstone deletes a key's tombstone if it is still the one at rev.
func (w *Watcher) removeTombstone(h authz.KeyHash, rev uint64) {
	w.spawn("remove tombstone", h, 0, func(ctx context.Context, epoch uint64) error {
		if _, _, ok := w.terminal.current(h, epoch); !ok {
			return nil
		}
		return w.kv.Delete(ctx, TombstoneSubject(h), jetstream.LastRevision(rev))
	})
}

// repairRecord writes a revived record back as revoked, if it is still the
// one at rev.
func (w *Watcher) repairRecord(h authz.KeyHash, revoked authz.KeyRecord, rev uint64) {
	w.spawn("repair record", h, 0, func(ctx context.Context, epoch uint64) error {
		if _, _, ok := w.terminal.current(h, epoch); !ok {
			return nil
		}
		return w.updateRevoked(ctx, h, revoked, rev)
	})
}

// repairUnknown writes back as revoked the record of a key that got a
// tombstone while this watcher did not hold it as revoked, unless a put of
// the key is seen by the time the write runs (it was then handled there).
func (w *Watcher) repairUnknown(h authz.KeyHash) {
	w.spawn("repair record", h, writeDelay, func(ctx context.Context, epoch uint64) error {
		g, guarded, ok := w.terminal.current(h, epoch)
		if !ok || !guarded || g.keyRev != 0 {
			return nil
		}
		e, found, err := leaderGet(ctx, w.conn.NATS(), w.kv.Bucket(), KeySubject(h))
		if err != nil || !found || e.op != jetstream.KeyValuePut {
			return err
		}
		rec, err := DecodeKey(e.value)
		if err != nil || rec.State == authz.StateRevoked {
			return nil // an unreadable record fails closed; a revoked one is right
		}
		rec.State = authz.StateRevoked
		return w.updateRevoked(ctx, h, rec, e.revision)
	})
}

func (w *Watcher) updateRevoked(ctx context.Context, h authz.KeyHash, revoked authz.KeyRecord, rev uint64) error {
	val, err := EncodeKey(revoked)
	if err != nil {
		return err
	}
	_, err = w.kv.Update(ctx, KeySubject(h), val, rev)
	return err
}
