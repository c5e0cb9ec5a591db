package events

import (
	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// changeWhileBuilding applies a live change of key.<hash> or revoked.<hash>
// while the index is being built (build.go). Whatever the key's history, a
// deletion leaves it absent, a revoked record revoked and an unreadable one
// unreadable: those are applied. Any other change may depend on history the
// pass has not read yet (a revocation, an expiry, a deletion that makes a
// tombstone stale): the sink forgets the key, so that its next read gets a
// verdict over all of it. Every change is kept for the end of the build, and
// the rules' bucket writes for the key wait until then. prior is the
// revision the index held for the key's record before this change: from the
// pass, when it had read the record this first change replaces. Callers hold
// mu.
func (w *Watcher) changeWhileBuilding(b *build, k KVKey, e jetstream.KeyValueEntry, prior uint64) {
	if len(b.changes) == maxBuildChanges {
		w.log.Warn("too many changes while building the key index; replaying the bucket fully", "changes", len(b.changes))
		w.needFull, w.fullNext = true, true
		select {
		case w.restarts <- restartFull:
		default:
		}
	}
	if _, seen := b.firstKey[k.Hash]; !seen && k.Kind == KindKey {
		b.firstKey[k.Hash] = e
		if prior > 0 && prior <= b.upTo {
			b.baseRev[k.Hash] = prior
		}
	}
	b.changes = append(b.changes, e)
	b.byHash[k.Hash] = append(b.byHash[k.Hash], e)
	w.terminal.contest(k.Hash)
	if s, ok := statedWhileBuilding(k, e); ok {
		w.sink.ApplyKey(k.Hash, s)
		return
	}
	w.lazy.ForgetKeys(e.Revision(), k.Hash)
}

// statedWhileBuilding returns the state a change of a key gives it whatever
// came before: absent after a deletion, unreadable, or revoked.
func statedWhileBuilding(k KVKey, e jetstream.KeyValueEntry) (authz.KeyEntry, bool) {
	rev := e.Revision()
	if k.Kind != KindKey {
		return authz.KeyEntry{}, false
	}
	if e.Operation() != jetstream.KeyValuePut {
		return authz.KeyEntry{Revision: rev, Presence: authz.Absent}, true
	}
	rec, err := DecodeKey(e.Value())
	switch {
	case err != nil:
		return authz.KeyEntry{Revision: rev}, true // Unreadable: fail closed
	case rec.State == authz.StateRevoked:
		return authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: rec}, true
	}
	return authz.KeyEntry{}, false
}
