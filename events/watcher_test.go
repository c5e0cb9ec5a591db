package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

func TestWatcherAppliesChanges(t *testing.T) {
	c, ctx, kv := startBucket(t)
	k1, k2, k3, bad := hashOf("sk_live_one"), hashOf("sk_live_two"), hashOf("sk_live_three"), hashOf("sk_live_bad")
	put(t, kv, events.KeyKVKey(k1), `{"key_id":"k1","account_id":"a1","state":"active"}`)
	put(t, kv, events.KeyKVKey(k2), `{"key_id":"k2","account_id":"a1","state":"suspended"}`)
	if err := kv.Delete(ctx, events.KeyKVKey(k2)); err != nil {
		t.Fatal(err)
	}
	put(t, kv, events.KeyKVKey(bad), `{"key_id":"k4","account_id":"a1","state":"on"}`)
	arev := put(t, kv, events.AccountKVKey("a1"), `{"balance":"5"}`)

	sink, n, w := startWatch(t, c, kv)
	if !w.Synced() || w.LastRevision() != arev || w.LastActivity().IsZero() {
		t.Errorf("after sync: Synced %v, LastRevision %d (want %d), LastActivity %v", w.Synced(), w.LastRevision(), arev, w.LastActivity())
	}
	checkNow(t, "initial key", keyIs(sink, k1, authz.Present, authz.StateActive))
	checkNow(t, "initial delete marker", keyIs(sink, k2, authz.Absent, ""))
	checkNow(t, "initial unreadable", keyIs(sink, bad, authz.Unreadable, ""))
	if a, _ := sink.account("a1"); a.Presence != authz.Present || a.Account.Balance.String() != "5" || a.Revision != arev {
		t.Errorf("account a1 = %+v", a)
	}

	put(t, kv, events.KeyKVKey(k3), `{"key_id":"k3","account_id":"a1","state":"active"}`)
	testkit.Eventually(t, 10*time.Second, "put applied", keyIs(sink, k3, authz.Present, authz.StateActive))
	if err := kv.Purge(ctx, events.KeyKVKey(k3)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "purge applied", keyIs(sink, k3, authz.Absent, ""))
	if err := kv.Delete(ctx, events.KeyKVKey(k1)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "delete applied", keyIs(sink, k1, authz.Absent, ""))
	put(t, kv, events.AccountKVKey("a1"), `{"balance":"-1"}`)
	testkit.Eventually(t, 10*time.Second, "balance applied", func() bool {
		a, _ := sink.account("a1")
		return a.Presence == authz.Present && !a.Account.Balance.Positive()
	})
	put(t, kv, events.AccountKVKey("a1"), `{"balance":"lots"}`)
	testkit.Eventually(t, 10*time.Second, "unreadable balance applied", func() bool {
		a, _ := sink.account("a1")
		return a.Presence == authz.Unreadable
	})
	// The observer hears of a change after the sink has it: wait for the
	// counts as well.
	testkit.Eventually(t, 10*time.Second, "2 bad records and 5 changes observed", func() bool {
		return n.bad.Load() == 2 && n.applied.Load() == 5
	})
}

func TestWatcherRefusesRevivingRevokedKey(t *testing.T) {
	c, _, kv := startBucket(t)
	h := hashOf("sk_live_revoked")
	sink, n, _ := startWatch(t, c, kv)
	revokeUnderWatch(t, kv, sink, h)
	rev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k","account_id":"a","state":"active"}`)
	testkit.Eventually(t, 10*time.Second, "revival seen", func() bool { e, _ := sink.key(h); return e.Revision >= rev })
	if e, _ := sink.key(h); e.Record.State != authz.StateRevoked || n.refused.Load() != 1 {
		t.Errorf("after revoked->active put: %+v, refused %d; want revoked, 1", e, n.refused.Load())
	}
}

// TestRevokedNeverRevives writes, around the Publisher, every other state
// over a revoked key: each is applied as revoked and counted as refused.
func TestRevokedNeverRevives(t *testing.T) {
	c, ctx, kv := startBucket(t)
	h := hashOf("sk_live_dead")
	sink, n, _ := startWatch(t, c, kv)
	revokeUnderWatch(t, kv, sink, h)
	for i, state := range []string{"active", "suspended", "active"} {
		rev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k2","account_id":"a2","state":"`+state+`"}`)
		testkit.Eventually(t, 10*time.Second, state+" applied", func() bool { e, _ := sink.key(h); return e.Revision >= rev }) // the repair may follow
		if e, _ := sink.key(h); e.Record.State != authz.StateRevoked {
			t.Errorf("revoked then %s: applied %q; want revoked", state, e.Record.State)
		}
		if n.refused.Load() != int64(i+1) {
			t.Errorf("refused %d; want %d", n.refused.Load(), i+1)
		}
	}
	other := hashOf("sk_live_dead_too")
	put(t, kv, events.KeyKVKey(other), `{"key_id":"k","account_id":"a","state":"revoked"}`)
	if _, err := events.NewPublisher(c.JetStream(), kv).Reactivate(ctx, other); !errors.Is(err, authz.ErrRevokedTerminal) {
		t.Errorf("Publisher.Reactivate of a revoked key: %v; want ErrRevokedTerminal", err)
	}
}

// revokeUnderWatch writes h as revoked around the Publisher and waits until
// the watch applied it. The watch must have delivered the revocation before
// it is overwritten: a watch's consumer that starts after both writes (it is
// ready before the server begins delivering) sees only the last value of the
// key, as any replica started later does, and nothing durable would yet say
// the key was revoked.
func revokeUnderWatch(tb testing.TB, kv jetstream.KeyValue, sink *recordingSink, h authz.KeyHash) {
	tb.Helper()
	put(tb, kv, events.KeyKVKey(h), `{"key_id":"k","account_id":"a","state":"revoked"}`)
	testkit.Eventually(tb, 15*time.Second, "revocation applied", keyIs(sink, h, authz.Present, authz.StateRevoked))
}

// TestWatcherResumesAfterRestart restarts the server under a running watcher:
// changes written before and after the watcher reconnects reach the sink
// within a second of the reconnect, without a full resync.
func TestWatcherResumesAfterRestart(t *testing.T) {
	s := startServer(t)
	c, ctx, kv := bucketOn(t, s)
	before, during, after := hashOf("sk_live_before"), hashOf("sk_live_during"), hashOf("sk_live_after")
	put(t, kv, events.KeyKVKey(before), `{"key_id":"k0","account_id":"a","state":"active"}`)
	sink, n := newSink(), &counts{}
	w := runWatcher(t, c, kv, sink, n.observer(), time.Minute)

	s.stop()
	testkit.Eventually(t, 10*time.Second, "watcher notices the disconnect", func() bool { return !w.Synced() })
	s.start()
	writer := connect(t, s)
	wkv := openBucket(t, writer)
	put(t, wkv, events.KeyKVKey(during), `{"key_id":"k1","account_id":"a","state":"active"}`)
	if err := wkv.Delete(ctx, events.KeyKVKey(before)); err != nil {
		t.Fatal(err)
	}
	wroteWhileAway := !c.Connected()

	testkit.Eventually(t, 15*time.Second, "watcher reconnects", c.Connected)
	reconnected := time.Now()
	put(t, wkv, events.KeyKVKey(after), `{"key_id":"k2","account_id":"a","state":"suspended"}`)
	testkit.Eventually(t, 10*time.Second, "changes after the restart", func() bool {
		return keyIs(sink, during, authz.Present, authz.StateActive)() &&
			keyIs(sink, before, authz.Absent, "")() &&
			keyIs(sink, after, authz.Present, authz.StateSuspended)()
	})
	t.Logf("changes applied %s after reconnect (written while away: %v)", time.Since(reconnected), wroteWhileAway)
	testkit.Eventually(t, 10*time.Second, "synced again", w.Synced)
	if sink.resetCount() != 0 || n.resync.Load() != 0 {
		t.Errorf("resets %d; want a resume, not a resync", sink.resetCount())
	}
}

func TestWatcherResyncsRecreatedBucket(t *testing.T) {
	c, ctx, kv := startBucket(t)
	old, fresh := hashOf("sk_live_old"), hashOf("sk_live_new")
	for i := range 5 {
		put(t, kv, events.AccountKVKey("a"), `{"balance":"`+string(rune('1'+i))+`"}`)
	}
	put(t, kv, events.KeyKVKey(old), `{"key_id":"k0","account_id":"a","state":"active"}`)
	sink, n, _ := startWatch(t, c, kv)

	if err := c.JetStream().DeleteKeyValue(ctx, events.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	kv2 := reopenBucket(t, c)
	for range 8 { // more revisions than the old bucket had
		put(t, kv2, events.KeyKVKey(fresh), `{"key_id":"k1","account_id":"a","state":"active"}`)
	}
	testkit.Eventually(t, 15*time.Second, "resync", func() bool {
		_, hasOld := sink.key(old)
		_, hasAccount := sink.account("a")
		return sink.resetCount() == 1 && !hasOld && !hasAccount &&
			keyIs(sink, fresh, authz.Present, authz.StateActive)()
	})
	if n.resync.Load() != 1 {
		t.Errorf("resync count %d; want 1", n.resync.Load())
	}
}

// TestKeyIndex: once the first replay is done, a key nobody created is
// certainly absent; a key created before or after the replay may exist as
// soon as its change reaches the sink; a deleted key keeps costing a lookup
// (its fingerprint stays); without word from JetStream for a second, the
// index rules nothing out.
func TestKeyIndex(t *testing.T) {
	srv := startServer(t)
	c, ctx, kv := bucketOn(t, srv)
	const rec = `{"key_id":"k","account_id":"a","state":"active"}`
	before, after, never := hashOf("sk_live_idx_before"), hashOf("sk_live_idx_after"), hashOf("sk_live_idx_never")
	put(t, kv, events.KeyKVKey(before), rec)
	sink, _, w := startWatch(t, c, kv)
	testkit.Eventually(t, 15*time.Second, "index complete", func() bool { _, done := w.IndexedKeys(); return done })
	testkit.Eventually(t, 15*time.Second, "index trusted once JetStream confirms the watch", func() bool { return !w.MayExist(never) })
	for _, tt := range []struct {
		name string
		h    authz.KeyHash
		want bool
	}{{"created before the replay", before, true}, {"never created", never, false}} {
		if got := w.MayExist(tt.h); got != tt.want {
			t.Errorf("MayExist(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
	rev := put(t, kv, events.KeyKVKey(after), rec)
	testkit.Eventually(t, 15*time.Second, "new key applied", func() bool { e, ok := sink.key(after); return ok && e.Revision == rev })
	if !w.MayExist(after) {
		t.Error("MayExist(key whose put reached the sink) = false; want true")
	}
	if err := kv.Delete(ctx, events.KeyKVKey(after)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "delete applied", func() bool { e, _ := sink.key(after); return e.Presence == authz.Absent })
	if !w.MayExist(after) {
		t.Error("MayExist(deleted key) = false; want true: its fingerprint may be shared, so it stays")
	}
	if n, _ := w.IndexedKeys(); n != 2 {
		t.Errorf("IndexedKeys() = %d; want 2", n)
	}
	// Cut off from JetStream, the index cannot know of keys created
	// meanwhile: misses go to the bucket again (and fail closed there).
	srv.stop()
	testkit.Eventually(t, 15*time.Second, "index not trusted without JetStream", func() bool { return w.MayExist(never) })
}
