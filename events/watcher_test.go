package events_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

type counts struct{ applied, bad, refused, resync, stall atomic.Int64 }

func (c *counts) observer() events.WatchObserver {
	return events.WatchObserver{
		Applied:   func(time.Duration) { c.applied.Add(1) },
		BadRecord: func() { c.bad.Add(1) },
		Refused:   func() { c.refused.Add(1) },
		Resync:    func() { c.resync.Add(1) },
		Stall:     func() { c.stall.Add(1) },
	}
}

// runWatcher runs a watcher until the test ends and waits for its first sync.
// The check interval is short unless the test must show that a reconnect
// alone brings the watch back.
func runWatcher(tb testing.TB, c *events.Conn, kv jetstream.KeyValue, sink events.Sink, obs events.WatchObserver, check time.Duration) *events.Watcher {
	tb.Helper()
	w, err := events.NewWatcher(c, kv, sink, events.WatcherConfig{
		Observer: obs, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		ProbeInterval: check,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil {
			tb.Errorf("Run: %v", err)
		}
	}()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-w.Ready():
	case <-time.After(5 * time.Second):
		tb.Fatal("watcher not ready within 5s")
	}
	return w
}

func keyIs(sink *recordingSink, h authz.KeyHash, p authz.Presence, s authz.KeyState) func() bool {
	return func() bool {
		e, ok := sink.key(h)
		return ok && e.Presence == p && (p != authz.Present || e.Record.State == s)
	}
}

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

	sink, n := newSink(), &counts{}
	w := runWatcher(t, c, kv, sink, n.observer(), 50*time.Millisecond)
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
	if n.bad.Load() != 2 || n.applied.Load() != 5 {
		t.Errorf("bad records %d, applied %d; want 2, 5", n.bad.Load(), n.applied.Load())
	}
}

func checkNow(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !cond() {
		tb.Errorf("%s: not applied", what)
	}
}

func TestWatcherRefusesRevivingRevokedKey(t *testing.T) {
	c := connect(t, startServer(t))
	kv := openBucket(t, c)
	h := hashOf("sk_live_revoked")
	sink, n := newSink(), &counts{}
	runWatcher(t, c, kv, sink, n.observer(), 50*time.Millisecond)
	put(t, kv, events.KeyKVKey(h), `{"key_id":"k","account_id":"a","state":"revoked"}`)
	testkit.Eventually(t, 10*time.Second, "revocation applied", keyIs(sink, h, authz.Present, authz.StateRevoked))
	rev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k","account_id":"a","state":"active"}`)
	testkit.Eventually(t, 10*time.Second, "revival seen", func() bool { e, _ := sink.key(h); return e.Revision >= rev })
	if e, _ := sink.key(h); e.Record.State != authz.StateRevoked || n.refused.Load() != 1 {
		t.Errorf("after revoked->active put: %+v, refused %d; want revoked, 1", e, n.refused.Load())
	}
}

// TestWatcherResumesAfterRestart restarts the server under a running watcher:
// changes written before and after the watcher reconnects reach the sink
// within a second of the reconnect, without a full resync.
func TestWatcherResumesAfterRestart(t *testing.T) {
	s := startServer(t)
	c := connect(t, s)
	kv := openBucket(t, c)
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
	if err := wkv.Delete(context.Background(), events.KeyKVKey(before)); err != nil {
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
	sink, n := newSink(), &counts{}
	runWatcher(t, c, kv, sink, n.observer(), 50*time.Millisecond)

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
