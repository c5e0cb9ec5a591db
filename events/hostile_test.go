package events_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// hostileRecord is a value a broken or rogue publisher writes to a key.
type hostileRecord struct {
	name, value string
}

// secret is a plaintext key that hostile records carry in their values and
// KV keys; it must never reach a log.
const secret = "sk_live_SECRET_never_log_me_0123456789"

var hostileKeyRecords = []hostileRecord{
	{"garbage", `{not json`},
	{"empty", ``},
	{"null", `null`},
	{"array", `[{"key_id":"k","account_id":"a","state":"active"}]`},
	{"unknown state", `{"key_id":"k","account_id":"a","state":"enabled"}`},
	{"state in caps", `{"key_id":"k","account_id":"a","state":"ACTIVE"}`},
	{"number id", `{"key_id":1,"account_id":"a","state":"active"}`},
	{"state object", `{"key_id":"k","account_id":"a","state":{"v":"active"}}`},
	{"missing state", `{"key_id":"k","account_id":"a"}`},
	{"duplicate state", `{"key_id":"k","account_id":"a","state":"revoked","state":"active"}`},
	{"trailing data", `{"key_id":"k","account_id":"a","state":"active"} {"state":"active"}`},
	{"account id with a dot", `{"key_id":"k","account_id":"a.b","state":"active"}`},
	{"account id with a wildcard", `{"key_id":"k","account_id":"*","state":"active"}`},
	{"account id with a space", `{"key_id":"k","account_id":"a b","state":"active"}`},
	{"secret as account id", `{"key_id":"k","account_id":"` + secret + `.x","state":"active"}`},
	{"secret as state", `{"key_id":"k","account_id":"a","state":"` + secret + `"}`},
	{"invalid UTF-8", "{\"key_id\":\"k\xff\",\"account_id\":\"a\",\"state\":\"active\"}"},
}

// TestHostileKeyRecords writes broken records over active keys: each is
// applied as Unreadable (fail closed), counted, and logged without the
// secret it carries; the watcher keeps running and applies a good change
// after them.
func TestHostileKeyRecords(t *testing.T) {
	c, _, kv := startBucket(t)
	var logs testkit.LogBuffer
	sink, n := newSink(), &counts{}
	w, err := events.NewWatcher(c, kv, sink, events.WatcherConfig{
		Logger: logs.Logger(slog.LevelInfo), Observer: n.observer(), ProbeInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runWatcherFor(t, w)

	for i, r := range hostileKeyRecords {
		h := hashOf("sk_live_hostile_" + r.name)
		put(t, kv, events.KeyKVKey(h), `{"key_id":"k","account_id":"a","state":"active"}`)
		rev := put(t, kv, events.KeyKVKey(h), r.value)
		testkit.Eventually(t, 10*time.Second, r.name+" applied", func() bool { e, _ := sink.key(h); return e.Revision == rev })
		if e, _ := sink.key(h); e.Presence != authz.Unreadable {
			t.Errorf("%s: applied as %v %q; want unreadable", r.name, e.Presence, e.Record.State)
		}
		if got := n.bad.Load(); got != int64(i+1) {
			t.Errorf("%s: bad records counted %d; want %d", r.name, got, i+1)
		}
	}
	// Records under KV keys that break the schema, one naming a plaintext key.
	for _, name := range []string{"key." + secret, "key.ABC", "account.a.b", "account." + secret + ".x", "other"} {
		put(t, kv, name, `{"balance":"5"}`)
	}
	good := hashOf("sk_live_after_the_storm")
	put(t, kv, events.KeyKVKey(good), `{"key_id":"k","account_id":"a","state":"active"}`)
	testkit.Eventually(t, 10*time.Second, "a good change after the hostile ones", keyIs(sink, good, authz.Present, authz.StateActive))
	if want := int64(len(hostileKeyRecords) + 5); n.bad.Load() != want {
		t.Errorf("bad records %d; want %d", n.bad.Load(), want)
	}
	if out := logs.String(); strings.Contains(out, secret) || strings.Contains(out, "SECRET") {
		t.Errorf("the secret reached the log:\n%s", out)
	}
	if !w.Synced() {
		t.Error("watcher not synced after hostile records")
	}
}

// TestOversizeValueRefused: the bucket refuses a value over MaxValueSize, so
// the key keeps its last good state.
func TestOversizeValueRefused(t *testing.T) {
	_, ctx, kv := startBucket(t)
	h := hashOf("sk_live_big")
	put(t, kv, events.KeyKVKey(h), `{"key_id":"k","account_id":"a","state":"suspended"}`)
	big := `{"key_id":"k","account_id":"a","state":"active","pad":"` + strings.Repeat("x", events.MaxValueSize) + `"}`
	if _, err := kv.Put(ctx, events.KeyKVKey(h), []byte(big)); err == nil {
		t.Fatal("oversize value accepted by the bucket")
	}
	if _, err := events.DecodeKey([]byte(big)); err == nil {
		t.Error("oversize value decoded")
	}
	e, err := events.NewLoader(kv).LoadKey(ctx, h)
	if err != nil || e.Record.State != authz.StateSuspended {
		t.Errorf("after a refused oversize put: %+v, %v; want suspended", e, err)
	}
}

// runWatcherFor runs w until the test ends and waits for its first sync.
func runWatcherFor(tb testing.TB, w *events.Watcher) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	tb.Cleanup(func() { cancel(); <-done })
	select {
	case <-w.Ready():
	case <-time.After(5 * time.Second):
		tb.Fatal("watcher not ready within 5s")
	}
}
