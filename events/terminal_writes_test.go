package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReplayWritesMissingTombstones: revoked records written before
// tombstones existed (or around every replica) all get one from the first
// replica that replays them.
func TestReplayWritesMissingTombstones(t *testing.T) {
	c := connect(t, startServer(t))
	kv := openBucket(t, c)
	const n = 300
	hashes := make([]authz.KeyHash, n)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("sk_live_old_revoked_%d", i))
		put(t, kv, events.KeyKVKey(hashes[i]), revokedJSON)
	}
	startReplica(t, c, kv)
	start := time.Now()
	testkit.Eventually(t, 10*time.Second, "a write per revoked key", func() bool { return lastRevision(t, kv) >= 2*n })
	keys, err := kv.ListKeys(context.Background(), jetstream.MetaOnly())
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
	c := connect(t, startServer(t))
	ctx := testCtx(t)
	kv := openBucket(t, c)
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
