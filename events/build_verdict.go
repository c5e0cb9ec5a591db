package events

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// While the index is being built (build.go), a Loader reads through the
// watcher: readWhileBuilding is a snapshot read that shows the position of
// the server that answered, and revokedWhileBuilding is the
// revoked-is-terminal verdict on the key that read.

// indexBuilder is what a Loader asks of a Watcher while it builds its index.
type indexBuilder interface {
	// readWhileBuilding reads kvKeys with a snapshot read, and returns the
	// revision the server must have applied for the answer to count (the
	// build's start). building is false, and nothing read, once the index
	// is complete.
	readWhileBuilding(ctx context.Context, kvKeys ...string) (snap snapshot, start uint64, building bool, err error)
	// revokedWhileBuilding reports whether the key h, read in snap, is
	// revoked for good, and from which revision.
	revokedWhileBuilding(ctx context.Context, h authz.KeyHash, snap snapshot) (at uint64, revoked bool, err error)
}

var _ indexBuilder = (*Watcher)(nil)

// errBuildAbandoned reports a read that spanned a full resync.
var errBuildAbandoned = errors.New("key index build abandoned for a resync")

func (w *Watcher) readWhileBuilding(ctx context.Context, kvKeys ...string) (snapshot, uint64, bool, error) {
	w.mu.Lock()
	b := w.build
	w.mu.Unlock()
	if b == nil {
		return snapshot{}, 0, false, nil
	}
	snap, err := readSnapshot(ctx, w.conn.NATS(), w.kv.Bucket(), append(slices.Clip(kvKeys), b.sentinel))
	return snap, b.upTo, true, err
}

// revokedWhileBuilding runs the rules, without writes or sink, over what is
// known of h: the terminal state the pass built from the history it has
// read, then in revision order the snapshot's entries the pass has not read
// yet, the live changes of h, and the snapshot's entries the watch has not
// delivered yet. When any change after the start is involved, it first waits
// for the messages the pass was already sent: one may be an entry of h
// that such a change then removed from the stream, and a replay would have
// seen it.
func (w *Watcher) revokedWhileBuilding(ctx context.Context, h authz.KeyHash, snap snapshot) (uint64, bool, error) {
	w.mu.Lock()
	b := w.build
	live := b != nil && b.involvesLive(h, snap)
	w.mu.Unlock()
	if live {
		if err := w.passCaughtUp(ctx, b); err != nil {
			return 0, false, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if b == nil || w.build != b {
		return w.revokedAfterBuild(b, h, snap)
	}
	dry := &rules{t: w.terminal.factsOf(h), keys: discardKeys{}, writes: noWrites{}, log: w.discard}
	for _, e := range b.history(w.kv.Bucket(), h, snap) {
		dry.change(ParseKVKey(e.Key()), e)
	}
	g, revoked := dry.t.guards[h]
	if !revoked && b.historyLost(h, snap) {
		return 0, false, errHistoryLost
	}
	return g.at(), revoked, nil
}

// errHistoryLost reports a key whose record may have been replaced, while
// the index was being built, before the pass could read it (historyLost).
var errHistoryLost = errors.New("the key changed before the key index build read its previous record; state known once the build completes")

// historyLost reports whether the record that the first live change of
// key h replaced may be unknown to the watcher: that change is a put of a
// record that is not revoked, the pass had not applied the record it
// replaced (the bucket keeps one value per key: it is gone), and the put
// does not show that there was none (a KV Create). The rules would judge
// the put without it, and a revocation or an expiry in it would have
// refused the put. Such a key fails closed until the build completes, after
// which it is judged as a replay that ran when the put was made would judge
// it. Callers hold mu.
func (b *build) historyLost(h authz.KeyHash, snap snapshot) bool {
	cur, inSnap := snap.entries[KeyKVKey(h)]
	first, changed := b.firstKey[h]
	switch {
	case changed:
	case inSnap && cur.revision > b.upTo: // a change the watch has not delivered yet
		first = &seqEntry{key: KeyKVKey(h), value: cur.value, revision: cur.revision, op: cur.op}
	default:
		return false // no change since the start: the pass or the snapshot holds the record
	}
	if _, known := b.baseRev[h]; known || first.Operation() != jetstream.KeyValuePut {
		return false
	}
	if rec, err := DecodeKey(first.Value()); err == nil && rec.State == authz.StateRevoked {
		return false
	}
	return !(inSnap && cur.revision == first.Revision() && cur.firstOfKey)
}

// revokedAfterBuild answers for a read that began while the index was
// being built and ends after: from the complete terminal state when it has
// applied the read's revision, else from the snapshot's tombstone, as a
// Loader does without an index. Callers hold mu.
func (w *Watcher) revokedAfterBuild(b *build, h authz.KeyHash, snap snapshot) (uint64, bool, error) {
	if b != nil && !b.complete {
		return 0, false, errBuildAbandoned
	}
	if at, revoked, known := w.terminal.lookup(h, snap.entries[KeyKVKey(h)].revision); known {
		return at, revoked, nil
	}
	t, ok := snap.entries[TombstoneKVKey(h)]
	if ok && t.op == jetstream.KeyValuePut {
		return t.revision, true, nil
	}
	return 0, false, nil
}

// involvesLive reports whether a change after the build's start is part of
// h's history as read in snap. Callers hold mu.
func (b *build) involvesLive(h authz.KeyHash, snap snapshot) bool {
	if len(b.byHash[h]) > 0 {
		return true
	}
	for _, kvKey := range []string{KeyKVKey(h), TombstoneKVKey(h)} {
		if e, ok := snap.entries[kvKey]; ok && e.revision > b.upTo {
			return true
		}
	}
	return false
}

// history returns, in revision order, the changes of h the terminal state
// does not hold yet: the live changes kept, and the snapshot's entries that
// neither the pass nor the watch has applied. Callers hold mu.
func (b *build) history(bucket string, h authz.KeyHash, snap snapshot) []jetstream.KeyValueEntry {
	live := b.byHash[h]
	es := slices.Clone(live)
	var lastLive uint64
	if len(live) > 0 {
		lastLive = live[len(live)-1].Revision()
	}
	for _, kvKey := range []string{KeyKVKey(h), TombstoneKVKey(h)} {
		e, ok := snap.entries[kvKey]
		unread := ok && e.revision <= b.upTo && e.revision > b.pos
		undelivered := ok && e.revision > b.upTo && e.revision > lastLive
		if unread || undelivered {
			es = append(es, &seqEntry{bucket: bucket, key: kvKey, value: e.value, revision: e.revision, created: e.created, op: e.op})
		}
	}
	slices.SortFunc(es, func(a, b jetstream.KeyValueEntry) int { return cmp.Compare(a.Revision(), b.Revision()) })
	return es
}

// discardKeys is a keyApplier that applies nothing.
type discardKeys struct{}

func (discardKeys) ApplyKey(authz.KeyHash, authz.KeyEntry) {}

// noWrites is a bucketWriter that writes nothing.
type noWrites struct{}

func (noWrites) writeTombstone(authz.KeyHash)                        {}
func (noWrites) rewriteTombstone(authz.KeyHash)                      {}
func (noWrites) removeTombstone(authz.KeyHash, uint64)               {}
func (noWrites) repairRecord(authz.KeyHash, authz.KeyRecord, uint64) {}
func (noWrites) repairUnknown(authz.KeyHash)                         {}
