package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// TestKeyIndex: once the first replay is done, a key nobody created is
// certainly absent; a key created before or after the replay may exist as
// soon as its change reaches the sink; a deleted key keeps costing a lookup
// (its fingerprint stays); without word from JetStream for a second, the
// index rules nothing out.
func TestKeyIndex(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv)
	kv := openBucket(t, c)
	const rec = `{"key_id":"k","account_id":"a","state":"active"}`
	before, after, never := hashOf("sk_live_idx_before"), hashOf("sk_live_idx_after"), hashOf("sk_live_idx_never")
	put(t, kv, events.KeyKVKey(before), rec)
	sink := newSink()
	w := runWatcher(t, c, kv, sink, events.WatchObserver{}, 50*time.Millisecond)
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
	if err := kv.Delete(context.Background(), events.KeyKVKey(after)); err != nil {
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
