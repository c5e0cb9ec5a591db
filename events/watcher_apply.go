package events

import (
	"log/slog"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// apply hands one bucket entry to the sink.
func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	k := ParseKVKey(e.Key())
	// Indexed before the sink: a Check must not miss a key the cache already
	// has, and a miss must not take a read older than a change it can see.
	fp, isKey := w.index.fingerprintOf(k, e.Key())
	var prior uint64 // the revision the index held, for a change while building
	if w.build != nil && isKey {
		prior = w.index.floor(fp)
	}
	w.index.record(fp, isKey, e.Revision())
	switch {
	case (k.Kind == KindKey || k.Kind == KindTombstone) && w.build != nil:
		w.changeWhileBuilding(w.build, k, e, prior)
	case k.Kind == KindKey || k.Kind == KindTombstone:
		w.rules.change(k, e)
	case k.Kind == KindAccount:
		w.sink.ApplyAccount(k.AccountID, w.accountEntry(e))
	default:
		w.badRecord(e, "kv key is neither key.<sha256 hex>, revoked.<sha256 hex> nor account.<id>")
	}
	w.applied = true
	if rev := e.Revision(); rev > w.last.Load() {
		w.last.Store(rev)
	}
	if w.build == nil {
		w.terminal.advance(e.Revision()) // while building, it vouches for nothing
	}
	w.touch()
	if f := w.cfg.Observer.Applied; f != nil && !w.replaying {
		f(time.Since(e.Created()))
	}
}

func (w *Watcher) accountEntry(e jetstream.KeyValueEntry) authz.AccountEntry {
	if e.Operation() != jetstream.KeyValuePut {
		return authz.AccountEntry{Revision: e.Revision(), Presence: authz.Absent}
	}
	acct, err := DecodeAccount(e.Value())
	if err != nil {
		w.badRecord(e, err.Error())
		return authz.AccountEntry{Revision: e.Revision()} // Unreadable: fail closed
	}
	return authz.AccountEntry{Revision: e.Revision(), Presence: authz.Present, Account: acct}
}

// badRecord counts and logs a value that does not decode. Decode errors name
// fields, never their values, so the log holds no secret.
func (w *Watcher) badRecord(e jetstream.KeyValueEntry, reason string) {
	logBadRecord(w.log, &w.cfg.Observer, e, reason)
}

func logBadRecord(log *slog.Logger, obs *WatchObserver, e jetstream.KeyValueEntry, reason string) {
	log.Warn("unreadable kv record; failing closed",
		"kv_key", safeKVKey(e.Key()), "revision", e.Revision(), "reason", reason)
	if obs != nil && obs.BadRecord != nil {
		obs.BadRecord()
	}
}

// safeKVKey returns a KV key fit for a log: one that holds a plaintext key
// (written by mistake instead of its hash) is redacted.
func safeKVKey(name string) string { return authz.Clip(name) }
