package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// withBuildHeld holds the watcher's background key index build until gate
// is closed.
func withBuildHeld(gate <-chan struct{}) func(*Config) { return func(c *Config) { c.buildGate = gate } }

// bucketWriter connects to the NATS server at url and returns a publisher
// and the bucket, for a test that writes before a server starts.
func bucketWriter(tb testing.TB, url string) (*events.Publisher, *events.Conn) {
	tb.Helper()
	ctx := context.Background()
	c, err := events.Connect(ctx, events.ConnConfig{URLs: []string{url}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	kv, err := events.OpenBucket(ctx, c.JetStream(), events.BucketConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return events.NewPublisher(c.JetStream(), kv), c
}

// TestReadyWhileTheKeyIndexBuilds: a server over a bucket that already
// holds keys is ready with its key index still being built (held here), and
// answers every key as one that replayed the bucket would: revoked before
// it started, revived raw before it started, revoked while it builds (a hot
// key), revived raw while it builds, deleted and created again while it
// builds. Its metrics show the index incomplete, then complete.
func TestReadyWhileTheKeyIndexBuilds(t *testing.T) {
	n := testkit.StartNATS(t)
	ctx := context.Background()
	p, c := bucketWriter(t, n.URL())
	const active, hot, revoked, revived, reborn = "sk_live_lazy_srv_active", "sk_live_lazy_srv_hot", "sk_live_lazy_srv_revoked", "sk_live_lazy_srv_revived", "sk_live_lazy_srv_reborn"
	if _, err := p.SetBalance(ctx, "acct_lazy", testkit.Balance(t, "10")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{active, hot, revoked, revived, reborn} {
		putKey(t, p, k, "key_lazy", "acct_lazy", authz.StateActive)
	}
	for _, k := range []string{revoked, revived, reborn} {
		if _, err := p.Revoke(ctx, authz.APIKey(k).Hash()); err != nil {
			t.Fatal(err)
		}
	}
	val, _ := events.EncodeKey(authz.KeyRecord{KeyID: "key_lazy", AccountID: "acct_lazy", State: authz.StateActive})
	kv, err := c.JetStream().KeyValue(ctx, events.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, events.KeyKVKey(authz.APIKey(revived).Hash()), val); err != nil {
		t.Fatal(err)
	}

	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	s := startServer(t, withNATS(n.URL()), withBuildHeld(gate))
	if got := metricValue(scrapeMetrics(t, s), "footstep_authz_watch_index_complete"); got != "0" {
		t.Fatalf("watch_index_complete = %s at ready; want 0 (held)", got)
	}
	want := func(when, key string, status int, code string) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, when+": "+key+" answered "+code, func() bool {
			st, c := decisionOf(t, s, key)
			return st == status && c == code
		})
	}
	decisions := func(when string) {
		want(when, active, 200, "ok")
		want(when, revoked, 403, "key_revoked")
		want(when, revived, 403, "key_revoked")
		want(when, "sk_live_lazy_srv_never_written", 403, "invalid_api_key")
	}
	decisions("while building")

	want("before its revocation", hot, 200, "ok")
	waitCached(t, s, func() bool { st, _ := decisionOf(t, s, hot); return st == 200 })
	if _, err := p.Revoke(ctx, authz.APIKey(hot).Hash()); err != nil {
		t.Fatal(err)
	}
	want("while building", hot, 403, "key_revoked")
	if _, err := kv.Put(ctx, events.KeyKVKey(authz.APIKey(revoked).Hash()), val); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DeleteKey(ctx, authz.APIKey(reborn).Hash()); err != nil {
		t.Fatal(err)
	}
	want("after its deletion", reborn, 403, "invalid_api_key")
	putKey(t, p, reborn, "key_reborn", "acct_lazy", authz.StateActive)
	want("while building", revoked, 403, "key_revoked")
	want("created again while building", reborn, 200, "ok")
	if got := metricValue(scrapeMetrics(t, s), "footstep_authz_watch_index_complete"); got != "0" {
		t.Fatalf("watch_index_complete = %s while held; want 0", got)
	}

	release()
	testkit.Eventually(t, 10*time.Second, "index complete", func() bool {
		return metricValue(scrapeMetrics(t, s), "footstep_authz_watch_index_complete") == "1"
	})
	decisions("after the build")
	want("after the build", hot, 403, "key_revoked")
	want("after the build", reborn, 200, "ok")
	if got := metricValue(scrapeMetrics(t, s), "footstep_authz_watch_indexed_keys"); got != "5" {
		t.Errorf("watch_indexed_keys = %s; want 5", got)
	}
}
