package events

import (
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// keyEntry turns a change of key.<hash> into what the sink is told, with
// revoked terminal: a put of any state over a key this watcher holds as
// revoked (its record was seen revoked, or it has a tombstone, and no delete
// of the key came since) is applied as revoked, counted and logged, and the
// record is written back as revoked. So is a put that is not a revocation
// over a key that had expired when the put was made (expiry.go). A delete or
// purge ends the key and its guard: a later put is a new key to every
// replica alike.
func (w *Watcher) keyEntry(h authz.KeyHash, e jetstream.KeyValueEntry) authz.KeyEntry {
	rev := e.Revision()
	if e.Operation() != jetstream.KeyValuePut {
		w.keyRemoved(h)
		return authz.KeyEntry{Revision: rev, Presence: authz.Absent}
	}
	delete(w.terminal.deleted, h)
	rec, err := DecodeKey(e.Value())
	if err != nil {
		w.badRecord(e, err.Error())
		return authz.KeyEntry{Revision: rev} // Unreadable: fail closed
	}
	expired := w.putAfterExpiry(h, rec, e.Created())
	g, guarded := w.terminal.guards[h]
	switch {
	case rec.State == authz.StateRevoked:
		w.terminal.set(h, guard{keyRev: rev, tombRev: g.tombRev})
		if g.tombRev == 0 {
			w.writeTombstone(h, NewTombstone(rec, rev, e.Created()))
		}
	case guarded && g.tombRemoved:
		// The tombstone went after the record was seen revoked: the key was
		// deleted (its delete marker superseded by this put before the watch
		// read it), or its tombstone removed by hand. Either way this put is
		// a new key, as on a replica that saw the deletion.
		w.log.Info("a put after its tombstone's removal is a new key", "key_hash", h.String(), "key_id", rec.KeyID, "revision", rev)
		w.terminal.drop(h)
	case guarded:
		rec = w.refuseRevival(h, g, rec, rev, "refused to revive a revoked key; applying it as revoked and writing it back")
	case expired:
		rec = w.refuseRevival(h, g, rec, rev, "refused to change an expired key; applying it as revoked and writing it back")
	}
	return authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: rec}
}

// refuseRevival handles a put of an active or suspended record over a key
// held as revoked or expired, and returns the record to apply.
func (w *Watcher) refuseRevival(h authz.KeyHash, g guard, rec authz.KeyRecord, rev uint64, msg string) authz.KeyRecord {
	w.log.Warn(msg, "key_hash", h.String(), "key_id", rec.KeyID, "revision", rev, "state", string(rec.State))
	if f := w.cfg.Observer.Refused; f != nil {
		f()
	}
	rec.State = authz.StateRevoked
	g.keyRev = rev
	w.terminal.set(h, g)
	w.repairRecord(h, rec, rev)
	if g.tombRev == 0 {
		w.writeTombstone(h, NewTombstone(rec, rev, time.Now()))
	}
	return rec
}

// keyRemoved ends a key's guard on its delete or purge marker, and removes
// the tombstone it knows of (only that one: never a newer).
func (w *Watcher) keyRemoved(h authz.KeyHash) {
	w.terminal.deleted[h] = struct{}{}
	delete(w.terminal.expiring, h)
	g, guarded := w.terminal.guards[h]
	if !guarded {
		return
	}
	w.terminal.drop(h)
	if g.tombRev != 0 {
		w.removeTombstone(h, g.tombRev)
	}
}

// applyTombstone applies a change of revoked.<hash>. A tombstone makes the
// key revoked for good: the sink is told so at the tombstone's revision,
// whichever of the key's record and its tombstone came first. A tombstone
// written after the key's last deletion is stale (a revocation racing a
// delete) and is removed. A tombstone removed while the key is still held as
// revoked is written again if the record is still the revoked one this
// watcher saw; a put of the key that comes first is a new key (guard's
// tombRemoved).
func (w *Watcher) applyTombstone(h authz.KeyHash, e jetstream.KeyValueEntry) {
	rev := e.Revision()
	g, guarded := w.terminal.guards[h]
	switch {
	case e.Operation() != jetstream.KeyValuePut:
		w.tombstoneRemoved(h, g, guarded)
		return
	case w.isDeleted(h):
		w.log.Info("removing a tombstone written after its key was deleted", "key_hash", h.String(), "revision", rev)
		w.removeTombstone(h, rev)
		return
	}
	t, err := DecodeTombstone(e.Value())
	if err != nil {
		w.badRecord(e, err.Error()) // still a tombstone: fail closed
	}
	if !guarded {
		w.repairUnknown(h)
	}
	g.tombRev, g.tombRemoved = rev, false
	w.terminal.set(h, g)
	switch {
	case err == nil:
		w.sink.ApplyKey(h, authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: t.Record()})
	case g.keyRev == 0: // nothing says who the key is: fail closed
		w.sink.ApplyKey(h, authz.KeyEntry{Revision: rev})
	}
}

func (w *Watcher) tombstoneRemoved(h authz.KeyHash, g guard, guarded bool) {
	switch {
	case !guarded:
	case g.keyRev != 0:
		w.log.Warn("tombstone of a revoked key removed; writing it again unless the key changed since", "key_hash", h.String())
		g.tombRev, g.tombRemoved = 0, true
		w.terminal.set(h, g)
		w.rewriteTombstone(h)
	default:
		// Known only by its tombstone, and no record of the key came since:
		// the key is gone or was never written here. What the sink holds
		// stays until the key changes; it denies either way.
		w.terminal.drop(h)
	}
}

func (w *Watcher) isDeleted(h authz.KeyHash) bool {
	_, ok := w.terminal.deleted[h]
	return ok
}
