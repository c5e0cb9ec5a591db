package events

import (
	"context"
	"sync"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// The watcher's own bucket writes keep "revoked is terminal" durable when
// keys are changed around the Publisher: it writes the tombstone of a key it
// saw revoked, writes a revived record back as revoked, and removes the
// tombstone of a deleted key. Every replica does, so one write wins and the
// others fail a revision check, which is fine: the change they lost to
// reaches them through the watch. The writes run off the apply path: they
// are queued (at most maxQueuedWrites) and run by at most writeWorkers
// goroutines, which exit when the queue is empty; each write is bounded by
// bucketWriteTimeout, and a write queued before a resync is dropped.
const (
	bucketWriteTimeout = 2 * time.Second
	writeWorkers       = 8
	maxQueuedWrites    = 1 << 20
	// writeDelay lets a Publisher's own write (the tombstone it writes
	// before the revoked record, or the record after its tombstone) reach
	// the watch first, so that replicas do not all race it for nothing.
	writeDelay = 100 * time.Millisecond
)

// bucketWrite is a queued write.
type bucketWrite struct {
	what  string
	h     authz.KeyHash
	due   time.Time
	epoch uint64
	run   func(context.Context, uint64) error
}

// writeQueue holds the watcher's bucket writes not yet run.
type writeQueue struct {
	mu      sync.Mutex
	items   []bucketWrite
	workers int
}

// spawn queues write to run after delay; a failed write is logged, a lost
// revision race is not.
func (w *Watcher) spawn(what string, h authz.KeyHash, delay time.Duration, write func(context.Context, uint64) error) {
	q := &w.terminal.writes
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= maxQueuedWrites {
		w.log.Warn("too many bucket writes queued; dropping one", "write", what, "key_hash", h.String())
		return
	}
	q.items = append(q.items, bucketWrite{what: what, h: h, due: time.Now().Add(delay), epoch: w.terminal.epoch.Load(), run: write})
	if q.workers < writeWorkers {
		q.workers++
		go w.writeLoop()
	}
}

// writeLoop runs queued writes until the queue is empty.
func (w *Watcher) writeLoop() {
	q := &w.terminal.writes
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.workers--
			q.mu.Unlock()
			return
		}
		bw := q.items[0]
		q.items[0] = bucketWrite{}
		q.items = q.items[1:]
		q.mu.Unlock()
		w.runWrite(bw)
	}
}

func (w *Watcher) runWrite(bw bucketWrite) {
	if d := time.Until(bw.due); d > 0 {
		t := time.NewTimer(d)
		<-t.C
	}
	ctx, cancel := context.WithTimeout(context.Background(), bucketWriteTimeout)
	defer cancel()
	if err := bw.run(ctx, bw.epoch); err != nil && !conflict(err) {
		w.log.Warn("kv bucket write failed", "write", bw.what, "key_hash", bw.h.String(), "err", err)
	}
}

// writeTombstone writes the tombstone of a key held as revoked, unless one
// is known by the time the write runs: only for the record this watcher's
// guard stands on (the revoked record it saw, or the revival it refused and
// is writing back) or a revoked one, as the stream leader holds it. A record
// changed otherwise since (deleted, or put again after a deletion whose
// marker the watch missed) is left to the watch.
func (w *Watcher) writeTombstone(h authz.KeyHash) {
	w.spawnTombstone(h, writeDelay, func(g guard, rec authz.KeyRecord, rev uint64) bool {
		return rev == g.keyRev || rec.State == authz.StateRevoked
	})
}

// rewriteTombstone writes again the tombstone of a key held as revoked whose
// tombstone was removed while its record stayed: only while the record is
// still the one this watcher saw revoked.
func (w *Watcher) rewriteTombstone(h authz.KeyHash) {
	w.spawnTombstone(h, 0, func(g guard, _ authz.KeyRecord, rev uint64) bool { return rev == g.keyRev })
}

// spawnTombstone queues the creation of h's tombstone after delay, for a
// key still held as revoked without a known tombstone when it runs, and a
// record that stands reports true for, given the key's guard then.
func (w *Watcher) spawnTombstone(h authz.KeyHash, delay time.Duration, stands func(guard, authz.KeyRecord, uint64) bool) {
	w.spawn("create tombstone", h, delay, func(ctx context.Context, epoch uint64) error {
		g, guarded, ok := w.terminal.current(h, epoch)
		if !ok || !guarded || g.tombRev != 0 {
			return nil
		}
		return w.createTombstone(ctx, h, func(rec authz.KeyRecord, rev uint64) bool { return stands(g, rec, rev) })
	})
}

// createTombstone writes h's tombstone, for its record as the stream leader
// holds it, if none stands and the record is one that stands reports true
// for. The write succeeds only if the tombstone's KV key is unchanged since
// it was read, before the record: a removal marker written meanwhile
// (Publisher.DeleteKey leaves one after deleting the record) fails it, as
// does a tombstone written by another replica. KeyValue.Create would write
// over such a marker.
func (w *Watcher) createTombstone(ctx context.Context, h authz.KeyHash, stands func(authz.KeyRecord, uint64) bool) error {
	last, found, err := leaderGet(ctx, w.conn.NATS(), w.kv.Bucket(), TombstoneKVKey(h))
	if err != nil {
		return err
	}
	if found && last.op == jetstream.KeyValuePut {
		return nil // one stands
	}
	var over uint64 // the revision to write over: a removal marker's, or none
	if found {
		over = last.revision
	}
	rec, rev, ok, err := w.leaderRecord(ctx, h)
	if !ok || !stands(rec, rev) {
		return err // none, changed since, or an unreadable one that fails closed: its tombstone waits for a readable one
	}
	val, err := EncodeTombstone(NewTombstone(rec, rev, time.Now()))
	if err != nil {
		return err
	}
	_, err = w.kv.Update(ctx, TombstoneKVKey(h), val, over)
	return err
}

// removeTombstone deletes a key's tombstone if it is still the one at rev.
func (w *Watcher) removeTombstone(h authz.KeyHash, rev uint64) {
	w.spawn("remove tombstone", h, 0, func(ctx context.Context, epoch uint64) error {
		if !w.terminal.sameEpoch(epoch) {
			return nil
		}
		return w.kv.Delete(ctx, TombstoneKVKey(h), jetstream.LastRevision(rev))
	})
}

// repairRecord writes a revived record back as revoked, if it is still the
// one at rev.
func (w *Watcher) repairRecord(h authz.KeyHash, revoked authz.KeyRecord, rev uint64) {
	w.spawn("repair record", h, 0, func(ctx context.Context, epoch uint64) error {
		if !w.terminal.sameEpoch(epoch) {
			return nil
		}
		return w.updateRevoked(ctx, h, revoked, rev)
	})
}

// repairUnknown writes back as revoked the record of a key that got a
// tombstone while this watcher did not hold it as revoked, unless a put of
// the key is seen by the time the write runs (it was then handled there),
// or the tombstone is gone by then. A tombstone gone means the key was
// deleted (Publisher.DeleteKey removes the record, then the tombstone) and
// the record read may be a new key whose put superseded the deletion's
// marker before this watch read it: not one to revoke. The record is read
// before the tombstone, so that a record read after such a deletion finds
// the tombstone already gone.
func (w *Watcher) repairUnknown(h authz.KeyHash) {
	w.spawn("repair record", h, writeDelay, func(ctx context.Context, epoch uint64) error {
		g, guarded, ok := w.terminal.current(h, epoch)
		if !ok || !guarded || g.keyRev != 0 {
			return nil
		}
		rec, rev, ok, err := w.leaderRecord(ctx, h)
		if !ok || rec.State == authz.StateRevoked {
			return err // none, or an unreadable one that fails closed; a revoked one is right
		}
		if standing, err := w.leaderHasTombstone(ctx, h); !standing {
			return err // removed since: the watch applies what replaced it
		}
		rec.State = authz.StateRevoked
		return w.updateRevoked(ctx, h, rec, rev)
	})
}

// leaderHasTombstone reports whether h has a tombstone, read through the
// stream leader.
func (w *Watcher) leaderHasTombstone(ctx context.Context, h authz.KeyHash) (bool, error) {
	e, found, err := leaderGet(ctx, w.conn.NATS(), w.kv.Bucket(), TombstoneKVKey(h))
	if err != nil {
		return false, err
	}
	return found && e.op == jetstream.KeyValuePut, nil
}

// leaderRecord reads h's record through the stream leader. ok is false, with
// a nil error, when there is no record or it does not decode.
func (w *Watcher) leaderRecord(ctx context.Context, h authz.KeyHash) (rec authz.KeyRecord, rev uint64, ok bool, err error) {
	e, found, err := leaderGet(ctx, w.conn.NATS(), w.kv.Bucket(), KeyKVKey(h))
	if err != nil || !found || e.op != jetstream.KeyValuePut {
		return authz.KeyRecord{}, 0, false, err
	}
	if rec, err = DecodeKey(e.value); err != nil {
		return authz.KeyRecord{}, 0, false, nil
	}
	return rec, e.revision, true, nil
}

func (w *Watcher) updateRevoked(ctx context.Context, h authz.KeyHash, revoked authz.KeyRecord, rev uint64) error {
	val, err := EncodeKey(revoked)
	if err != nil {
		return err
	}
	_, err = w.kv.Update(ctx, KeyKVKey(h), val, rev)
	return err
}
