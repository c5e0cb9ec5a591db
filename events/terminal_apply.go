package events

import (
	"log/slog"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// rules applies "revoked is terminal" to the changes of key and tombstone
// records, one at a time and in revision order: it keeps what it needs of
// each key's history in t, tells keys the effective state of each key, and
// asks writes for the bucket writes that keep the rule durable. A watcher's
// rules feed its sink and write to the bucket; a dry run (answering a miss
// while the index is being built, build_verdict.go) does neither.
type rules struct {
	t      *terminal
	keys   keyApplier
	writes bucketWriter
	log    *slog.Logger
	obs    *WatchObserver // nil: nothing is counted
}

// keyApplier is told the effective state of a key (a Sink).
type keyApplier interface {
	ApplyKey(h authz.KeyHash, e authz.KeyEntry)
}

// bucketWriter makes the bucket writes of terminal_writes.go.
type bucketWriter interface {
	writeTombstone(h authz.KeyHash)
	rewriteTombstone(h authz.KeyHash)
	removeTombstone(h authz.KeyHash, rev uint64)
	repairRecord(h authz.KeyHash, revoked authz.KeyRecord, rev uint64)
	repairUnknown(h authz.KeyHash)
}

// change applies a change of key.<hash> or revoked.<hash>.
func (r *rules) change(k KVKey, e jetstream.KeyValueEntry) {
	if k.Kind == KindKey {
		r.keys.ApplyKey(k.Hash, r.keyEntry(k.Hash, e))
		return
	}
	r.applyTombstone(k.Hash, e)
}

func (r *rules) badRecord(e jetstream.KeyValueEntry, reason string) {
	logBadRecord(r.log, r.obs, e, reason)
}

// keyEntry turns a change of key.<hash> into what the sink is told, with
// revoked terminal: a put of any state over a key this watcher holds as
// revoked (its record was seen revoked, or it has a tombstone, and no delete
// of the key came since) is applied as revoked, counted and logged, and the
// record is written back as revoked. So is a put that is not a revocation
// over a key that had expired when the put was made (expiry.go). A delete or
// purge ends the key and its guard: a later put is a new key to every
// replica alike.
func (r *rules) keyEntry(h authz.KeyHash, e jetstream.KeyValueEntry) authz.KeyEntry {
	rev := e.Revision()
	if e.Operation() != jetstream.KeyValuePut {
		r.keyRemoved(h)
		return authz.KeyEntry{Revision: rev, Presence: authz.Absent}
	}
	delete(r.t.deleted, h)
	rec, err := DecodeKey(e.Value())
	if err != nil {
		r.badRecord(e, err.Error())
		return authz.KeyEntry{Revision: rev} // Unreadable: fail closed
	}
	expired := r.putAfterExpiry(h, rec, e.Created())
	g, guarded := r.t.guards[h]
	switch {
	case rec.State == authz.StateRevoked:
		r.t.set(h, guard{keyRev: rev, tombRev: g.tombRev})
		if g.tombRev == 0 {
			r.writes.writeTombstone(h)
		}
	case guarded && g.tombRemoved:
		// The tombstone went after the record was seen revoked: the key was
		// deleted (its delete marker superseded by this put before the watch
		// read it), or its tombstone removed by hand. Either way this put is
		// a new key, as on a replica that saw the deletion.
		r.log.Info("a put after its tombstone's removal is a new key", "key_hash", h.String(), "key_id", rec.KeyID, "revision", rev)
		r.t.drop(h)
	case guarded:
		rec = r.refuseRevival(h, g, rec, rev, "refused to revive a revoked key; applying it as revoked and writing it back")
	case expired:
		rec = r.refuseRevival(h, g, rec, rev, "refused to change an expired key; applying it as revoked and writing it back")
	}
	return authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: rec}
}

// refuseRevival handles a put of an active or suspended record over a key
// held as revoked or expired, and returns the record to apply.
func (r *rules) refuseRevival(h authz.KeyHash, g guard, rec authz.KeyRecord, rev uint64, msg string) authz.KeyRecord {
	r.log.Warn(msg, "key_hash", h.String(), "key_id", rec.KeyID, "revision", rev, "state", string(rec.State))
	if r.obs != nil && r.obs.Refused != nil {
		r.obs.Refused()
	}
	rec.State = authz.StateRevoked
	g.keyRev = rev
	r.t.set(h, g)
	r.writes.repairRecord(h, rec, rev)
	if g.tombRev == 0 {
		r.writes.writeTombstone(h)
	}
	return rec
}

// keyRemoved ends a key's guard on its delete or purge marker, and removes
// the tombstone it knows of (only that one: never a newer).
func (r *rules) keyRemoved(h authz.KeyHash) {
	r.t.deleted[h] = struct{}{}
	delete(r.t.expiring, h)
	g, guarded := r.t.guards[h]
	if !guarded {
		return
	}
	r.t.drop(h)
	if g.tombRev != 0 {
		r.writes.removeTombstone(h, g.tombRev)
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
func (r *rules) applyTombstone(h authz.KeyHash, e jetstream.KeyValueEntry) {
	rev := e.Revision()
	g, guarded := r.t.guards[h]
	switch {
	case e.Operation() != jetstream.KeyValuePut:
		r.tombstoneRemoved(h, g, guarded)
		return
	case r.isDeleted(h):
		r.log.Info("removing a tombstone written after its key was deleted", "key_hash", h.String(), "revision", rev)
		r.writes.removeTombstone(h, rev)
		return
	}
	t, err := DecodeTombstone(e.Value())
	if err != nil {
		r.badRecord(e, err.Error()) // still a tombstone: fail closed
	}
	if !guarded {
		r.writes.repairUnknown(h)
	}
	g.tombRev, g.tombRemoved = rev, false
	r.t.set(h, g)
	switch {
	case err == nil:
		r.keys.ApplyKey(h, authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: t.Record()})
	case g.keyRev == 0: // nothing says who the key is: fail closed
		r.keys.ApplyKey(h, authz.KeyEntry{Revision: rev})
	}
}

func (r *rules) tombstoneRemoved(h authz.KeyHash, g guard, guarded bool) {
	switch {
	case !guarded:
	case g.keyRev != 0:
		r.log.Warn("tombstone of a revoked key removed; writing it again unless the key changed since", "key_hash", h.String())
		g.tombRev, g.tombRemoved = 0, true
		r.t.set(h, g)
		r.writes.rewriteTombstone(h)
	default:
		// Known only by its tombstone, and no record of the key came since:
		// the key is gone or was never written here. What the sink holds
		// stays until the key changes; it denies either way.
		r.t.drop(h)
	}
}

func (r *rules) isDeleted(h authz.KeyHash) bool {
	_, ok := r.t.deleted[h]
	return ok
}
