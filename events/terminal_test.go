package events_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

// replica is a watcher feeding a sink and a store that asks the watcher, as
// footstep-authz wires them.
type replica struct {
	sink  *recordingSink
	n     *counts
	w     *events.Watcher
	store *events.Loader
}

func startReplica(tb testing.TB, c *events.Conn, kv jetstream.KeyValue) *replica {
	tb.Helper()
	r := &replica{store: events.NewLoader(kv, events.ReadFromLeader(c.NATS()))}
	r.sink, r.n, r.w = startWatch(tb, c, kv)
	r.store.UseIndex(r.w)
	return r
}

// appliedAtLeast reports whether the sink holds h at revision rev or later
// with presence p and (when present) state s.
func appliedAtLeast(sink *recordingSink, h authz.KeyHash, rev uint64, p authz.Presence, s authz.KeyState) func() bool {
	return func() bool {
		e, ok := sink.key(h)
		return ok && e.Revision >= rev && e.Presence == p && (p != authz.Present || e.Record.State == s)
	}
}

const (
	activeJSON  = `{"key_id":"k1","account_id":"a1","state":"active"}`
	revokedJSON = `{"key_id":"k1","account_id":"a1","state":"revoked"}`
	tombJSON    = `{"key_id":"k1","account_id":"a1","revision":1,"at":"2026-01-02T03:04:05Z"}`
)

func storedState(tb testing.TB, kv jetstream.KeyValue, h authz.KeyHash) authz.KeyState {
	tb.Helper()
	e, err := kv.Get(context.Background(), events.KeyKVKey(h))
	if err != nil {
		return ""
	}
	rec, err := events.DecodeKey(e.Value())
	if err != nil {
		return ""
	}
	return rec.State
}

func hasTombstone(kv jetstream.KeyValue, h authz.KeyHash) bool {
	_, err := kv.Get(context.Background(), events.TombstoneKVKey(h))
	return err == nil
}

func wantRevoked(tb testing.TB, what string, e authz.KeyEntry, err error, atLeast uint64) {
	tb.Helper()
	if err != nil || e.Presence != authz.Present || e.Record.State != authz.StateRevoked || e.Revision < atLeast {
		tb.Errorf("%s = %+v, %v; want present, revoked, revision >= %d", what, e, err, atLeast)
	}
}

// TestRevivalAfterRevokeSeenLive: a replica that saw the revocation applies
// a raw revival as revoked (a), its store answers revoked (c), and the
// bucket is written back as revoked (d).
func TestRevivalAfterRevokeSeenLive(t *testing.T) {
	c, ctx, kv := startBucket(t)
	p := events.NewPublisher(c.JetStream(), kv)
	h := hashOf("sk_live_revived")
	if _, err := p.PutKey(ctx, h, authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, c, kv)
	rrev, err := p.Revoke(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if !hasTombstone(kv, h) {
		t.Fatal("Revoke wrote no tombstone")
	}
	testkit.Eventually(t, 10*time.Second, "revocation applied", appliedAtLeast(r.sink, h, rrev, authz.Present, authz.StateRevoked))

	rev := put(t, kv, events.KeyKVKey(h), activeJSON)
	testkit.Eventually(t, 10*time.Second, "revival applied as revoked", appliedAtLeast(r.sink, h, rev, authz.Present, authz.StateRevoked))
	e, err := r.store.LoadKey(ctx, h)
	wantRevoked(t, "LoadKey after the revival", e, err, rev)
	testkit.Eventually(t, 10*time.Second, "bucket written back as revoked", func() bool { return storedState(t, kv, h) == authz.StateRevoked })
	if r.n.refused.Load() < 1 {
		t.Errorf("refused %d; want at least 1", r.n.refused.Load())
	}
	if e, _ := r.sink.key(h); e.Record.State != authz.StateRevoked {
		t.Errorf("after the repair: %+v; want revoked", e)
	}
}

// TestRevivalWhileNoReplicaRan: keys revoked then revived with no replica
// running, the tombstone written before the revival (by Revoke) or after it
// (by a replica that saw the revocation but not yet the revival). A replica
// started afterwards applies both as revoked (b), a store with or without
// its index answers revoked (c), and the bucket is repaired (d).
func TestRevivalWhileNoReplicaRan(t *testing.T) {
	c, ctx, kv := startBucket(t)
	p := events.NewPublisher(c.JetStream(), kv)
	before, after := hashOf("sk_live_tomb_before"), hashOf("sk_live_tomb_after")

	if _, err := p.PutKey(ctx, before, authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Revoke(ctx, before); err != nil {
		t.Fatal(err)
	}
	revBefore := put(t, kv, events.KeyKVKey(before), activeJSON)

	put(t, kv, events.KeyKVKey(after), revokedJSON)
	put(t, kv, events.KeyKVKey(after), activeJSON)
	revAfter := put(t, kv, events.TombstoneKVKey(after), tombJSON)

	cold := events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	for name, h := range map[string]authz.KeyHash{"tombstone first": before, "tombstone last": after} {
		e, err := cold.LoadKey(ctx, h)
		wantRevoked(t, "cold LoadKey, "+name, e, err, 1)
		e, err = events.NewLoader(kv).LoadKey(ctx, h)
		wantRevoked(t, "direct LoadKey, "+name, e, err, 1)
	}

	r := startReplica(t, c, kv)
	for name, tt := range map[string]struct {
		h   authz.KeyHash
		rev uint64
	}{"tombstone first": {before, revBefore}, "tombstone last": {after, revAfter}} {
		if !appliedAtLeast(r.sink, tt.h, tt.rev, authz.Present, authz.StateRevoked)() {
			e, _ := r.sink.key(tt.h)
			t.Errorf("%s: replica started after the revival applied %+v; want revoked at >= %d", name, e, tt.rev)
		}
		e, err := r.store.LoadKey(ctx, tt.h)
		wantRevoked(t, "indexed LoadKey, "+name, e, err, tt.rev)
		testkit.Eventually(t, 10*time.Second, name+": bucket repaired", func() bool { return storedState(t, kv, tt.h) == authz.StateRevoked })
	}
	for _, h := range []authz.KeyHash{before, after} {
		if _, err := p.Reactivate(ctx, h); !errors.Is(err, authz.ErrRevokedTerminal) {
			t.Errorf("Reactivate of a tombstoned key = %v; want ErrRevokedTerminal", err)
		}
	}
}

// TestDeleteThenPutIsNewKey: after a revocation, a delete then a put is a
// new key on the replica that saw it all and on one started afterwards (f),
// whether the delete came from the Publisher or around it.
func TestDeleteThenPutIsNewKey(t *testing.T) {
	c, ctx, kv := startBucket(t)
	p := events.NewPublisher(c.JetStream(), kv)
	old := startReplica(t, c, kv)
	for _, raw := range []bool{false, true} {
		h := hashOf("sk_live_reborn_" + map[bool]string{false: "publisher", true: "raw"}[raw])
		put(t, kv, events.KeyKVKey(h), activeJSON)
		if _, err := p.Revoke(ctx, h); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "revoked", appliedAtLeast(old.sink, h, 1, authz.Present, authz.StateRevoked))
		if raw {
			if err := kv.Delete(ctx, events.KeyKVKey(h)); err != nil {
				t.Fatal(err)
			}
		} else if _, err := p.DeleteKey(ctx, h); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "tombstone removed", func() bool { return !hasTombstone(kv, h) })
		rev := put(t, kv, events.KeyKVKey(h), activeJSON)
		testkit.Eventually(t, 30*time.Second, "new key active on the old replica", appliedAtLeast(old.sink, h, rev, authz.Present, authz.StateActive))
		if e, err := old.store.LoadKey(ctx, h); err != nil || e.Record.State != authz.StateActive {
			t.Errorf("raw %v: LoadKey of the new key = %+v, %v; want active", raw, e, err)
		}
		fresh := startReplica(t, c, kv)
		if !appliedAtLeast(fresh.sink, h, rev, authz.Present, authz.StateActive)() {
			e, _ := fresh.sink.key(h)
			t.Errorf("raw %v: new replica applied %+v; want active", raw, e)
		}
	}
	if n := old.n.refused.Load(); n != 0 {
		t.Errorf("refused %d; want 0", n)
	}
}

// TestLateTombstoneWriteAfterDeleteAndPut: a watcher that saw a key revoked
// by its record alone writes its tombstone, and the write is held up on the
// network until the key was deleted with the Publisher and put again. The
// write does not land once released: the new key stays active, without a
// tombstone, on the watcher and in the bucket.
func TestLateTombstoneWriteAfterDeleteAndPut(t *testing.T) {
	s := startServer(t)
	c, ctx, kv := bucketOn(t, s)
	p := events.NewPublisher(c.JetStream(), kv)
	proxy := testkit.NewProxy(t, s.addr)
	wc, err := events.Connect(ctx, events.ConnConfig{URLs: []string{"nats://" + proxy.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wc.Close)
	sink, n := newSink(), &counts{}
	// No probe: while the proxy holds, the watcher sends nothing but the write.
	runWatcherWith(t, wc, openBucket(t, wc), sink, events.WatcherConfig{Observer: n.observer(), ProbeInterval: time.Hour})

	h := hashOf("sk_live_late_tombstone")
	proxy.Hold(true)
	rev := put(t, kv, events.KeyKVKey(h), revokedJSON)
	testkit.Eventually(t, 10*time.Second, "revoked", appliedAtLeast(sink, h, rev, authz.Present, authz.StateRevoked))
	testkit.Eventually(t, 10*time.Second, "the watcher's tombstone write under way", proxy.Holding)
	if _, err := p.DeleteKey(ctx, h); err != nil {
		t.Fatal(err)
	}
	rev = put(t, kv, events.KeyKVKey(h), activeJSON)
	proxy.Hold(false)
	testkit.Eventually(t, 10*time.Second, "new key active", appliedAtLeast(sink, h, rev, authz.Present, authz.StateActive))
	// A write ends within 2 s of its start (bucketWriteTimeout); watch the
	// bucket and the watcher past that.
	testkit.Poll(3*time.Second, func() bool {
		if hasTombstone(kv, h) || storedState(t, kv, h) != authz.StateActive || !keyIs(sink, h, authz.Present, authz.StateActive)() {
			e, _ := sink.key(h)
			t.Fatalf("the new key: tombstone %v, stored %q, applied %+v; want active without a tombstone", hasTombstone(kv, h), storedState(t, kv, h), e)
		}
		return false
	})
}

// TestStaleTombstoneRemoved: a tombstone written after its key was deleted
// (a revocation racing a deletion) does not revoke the next key of that
// hash, and watchers remove it.
func TestStaleTombstoneRemoved(t *testing.T) {
	c, ctx, kv := startBucket(t)
	r := startReplica(t, c, kv)
	h := hashOf("sk_live_stale")
	put(t, kv, events.KeyKVKey(h), revokedJSON)
	if err := kv.Delete(ctx, events.KeyKVKey(h)); err != nil {
		t.Fatal(err)
	}
	put(t, kv, events.TombstoneKVKey(h), tombJSON)
	testkit.Eventually(t, 10*time.Second, "stale tombstone removed", func() bool { return !hasTombstone(kv, h) })
	rev := put(t, kv, events.KeyKVKey(h), activeJSON)
	testkit.Eventually(t, 10*time.Second, "new key active", appliedAtLeast(r.sink, h, rev, authz.Present, authz.StateActive))
}

// TestTombstoneRemovedAroundDelete: a tombstone removed while its key still
// exists is written again by a replica holding the key as revoked.
func TestTombstoneRemovedAroundDelete(t *testing.T) {
	c, ctx, kv := startBucket(t)
	r := startReplica(t, c, kv)
	h := hashOf("sk_live_keep_tomb")
	rev := put(t, kv, events.KeyKVKey(h), revokedJSON)
	testkit.Eventually(t, 10*time.Second, "tombstone written by the watcher", func() bool { return hasTombstone(kv, h) })
	if err := kv.Delete(ctx, events.TombstoneKVKey(h)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "tombstone written again", func() bool { return hasTombstone(kv, h) })
	if !appliedAtLeast(r.sink, h, rev, authz.Present, authz.StateRevoked)() {
		t.Error("key no longer revoked")
	}
}

// TestResyncForgetsTombstones: a recreated bucket is a new history (g): a
// key revoked in the old bucket is active in the new one after the resync.
func TestResyncForgetsTombstones(t *testing.T) {
	c, ctx, kv := startBucket(t)
	h := hashOf("sk_live_old_history")
	put(t, kv, events.KeyKVKey(h), activeJSON)
	if _, err := events.NewPublisher(c.JetStream(), kv).Revoke(ctx, h); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, c, kv)
	checkNow(t, "revoked before the resync", appliedAtLeast(r.sink, h, 1, authz.Present, authz.StateRevoked))

	if err := c.JetStream().DeleteKeyValue(ctx, events.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	kv2 := reopenBucket(t, c)
	var rev uint64
	for range 8 { // more revisions than the old bucket had
		rev = put(t, kv2, events.KeyKVKey(h), activeJSON)
	}
	testkit.Eventually(t, 15*time.Second, "resync applies the new key as active", func() bool {
		return r.sink.resetCount() == 1 && appliedAtLeast(r.sink, h, rev, authz.Present, authz.StateActive)()
	})
	if e, err := r.store.LoadKey(ctx, h); err != nil || e.Record.State != authz.StateActive {
		t.Errorf("LoadKey after the resync = %+v, %v; want active", e, err)
	}
	if hasTombstone(kv2, h) {
		t.Error("a tombstone reached the new bucket")
	}
}

// TestRawPutAfterExpiry: a raw put that drops the expiry of an expired key
// (judged by the entry's KV timestamp) is applied as revoked, written back
// as revoked with a tombstone, and a replica started afterwards answers
// revoked too. A put before the expiry instant moves it freely.
func TestRawPutAfterExpiry(t *testing.T) {
	c, ctx, kv := startBucket(t)
	r := startReplica(t, c, kv)
	h, early := hashOf("sk_live_expiring_raw"), hashOf("sk_live_not_yet_expired")

	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	put(t, kv, events.KeyKVKey(early), `{"key_id":"k2","account_id":"a1","state":"active","expires_at":"`+future+`"}`)
	rev := put(t, kv, events.KeyKVKey(early), activeJSON)
	testkit.Eventually(t, 10*time.Second, "expiry dropped before it", appliedAtLeast(r.sink, early, rev, authz.Present, authz.StateActive))

	past := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	expiredRev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k1","account_id":"a1","state":"active","expires_at":"`+past+`"}`)
	// The watch must have read the expired record: a put made at once would
	// supersede it (one message per key), and no watcher could judge a put
	// over a record it never saw (the window the README names).
	testkit.Eventually(t, 10*time.Second, "expired record applied", appliedAtLeast(r.sink, h, expiredRev, authz.Present, authz.StateActive))
	rev = put(t, kv, events.KeyKVKey(h), activeJSON)
	testkit.Eventually(t, 10*time.Second, "put after expiry applied as revoked", appliedAtLeast(r.sink, h, rev, authz.Present, authz.StateRevoked))
	testkit.Eventually(t, 10*time.Second, "bucket written back as revoked", func() bool { return storedState(t, kv, h) == authz.StateRevoked })
	testkit.Eventually(t, 10*time.Second, "tombstone written", func() bool { return hasTombstone(kv, h) })
	if r.n.refused.Load() < 1 {
		t.Errorf("refused %d; want at least 1", r.n.refused.Load())
	}

	later := startReplica(t, c, kv)
	e, err := later.store.LoadKey(ctx, h)
	wantRevoked(t, "LoadKey on a replica started afterwards", e, err, rev)
	if e, _ := r.store.LoadKey(ctx, early); e.Record.State != authz.StateActive || !e.Record.ExpiresAt.IsZero() {
		t.Errorf("key whose expiry was dropped in time: %+v; want active, no expiry", e)
	}
}

// TestReplayWritesMissingTombstones: revoked records written before
// tombstones existed (or around every replica) all get one from the first
// replica that replays them.
func TestReplayWritesMissingTombstones(t *testing.T) {
	c, ctx, kv := startBucket(t)
	const n = 300
	hashes := make([]authz.KeyHash, n)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("sk_live_old_revoked_%d", i))
		put(t, kv, events.KeyKVKey(hashes[i]), revokedJSON)
	}
	startReplica(t, c, kv)
	start := time.Now()
	testkit.Eventually(t, 10*time.Second, "a write per revoked key", func() bool { return lastRevision(t, kv) >= 2*n })
	keys, err := kv.ListKeys(ctx, jetstream.MetaOnly())
	if err != nil {
		t.Fatal(err)
	}
	tombs := 0
	for k := range keys.Keys() {
		if events.ParseKVKey(k).Kind == events.KindTombstone {
			tombs++
		}
	}
	if tombs != n {
		t.Errorf("%d tombstones; want %d", tombs, n)
	}
	t.Logf("%d tombstones written %s after the replica started", n, time.Since(start).Round(time.Millisecond))
}

// TestGarbledTombstoneStillRevokes: a tombstone whose value does not decode
// is counted as a bad record and still revokes its key, which the watcher
// then writes back as revoked.
func TestGarbledTombstoneStillRevokes(t *testing.T) {
	c, ctx, kv := startBucket(t)
	r := startReplica(t, c, kv)
	h := hashOf("sk_live_garbled_tomb")
	put(t, kv, events.KeyKVKey(h), activeJSON)
	rev := put(t, kv, events.TombstoneKVKey(h), `{"key_id":"`+secret+`"`)
	testkit.Eventually(t, 10*time.Second, "tombstone applied", func() bool { e, _ := r.sink.key(h); return e.Revision >= rev && e.Presence != authz.Present })
	e, err := r.store.LoadKey(ctx, h)
	wantRevoked(t, "LoadKey with a garbled tombstone", e, err, rev)
	testkit.Eventually(t, 10*time.Second, "record written back as revoked", appliedAtLeast(r.sink, h, rev+1, authz.Present, authz.StateRevoked))
	if bad, resyncs := r.n.bad.Load(), r.n.resync.Load(); bad != 1+resyncs { // a resync replays it
		t.Errorf("bad records %d after %d resyncs; want %d", bad, resyncs, 1+resyncs)
	}
}
