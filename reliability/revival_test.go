package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// TestRevokedStaysRevokedEverywhere revokes keys, then writes them back as
// active straight into the bucket, with no delete in between, as a raw
// writer (the nats CLI, a buggy console) could: the replica that saw the
// revocation, whether it holds the key hot or never read it, a replica with
// a cache too small to hold anything for long, and a replica started after
// the revival all answer key_revoked, and the bucket reads revoked again.
// A delete then a put is a new key everywhere.
func TestRevokedStaysRevokedEverywhere(t *testing.T) {
	s, conn, kv := startSingle(t)
	pub := events.NewPublisher(conn.JetStream(), kv)
	ctx := context.Background()
	saw := startInstance(t, instanceConfig{URLs: []string{s.URL()}})
	small := startInstance(t, instanceConfig{URLs: []string{s.URL()}, CacheSize: 1 << 20})
	saw.waitReady(10 * time.Second)
	small.waitReady(10 * time.Second)

	const hot, cold = "sk_live_revival_hot", "sk_live_revival_cold"
	putActive(t, pub, hot, "key_rh", "acct_r")
	putActive(t, pub, cold, "key_rc", "acct_r")
	testkit.Eventually(t, 15*time.Second, "hot key allowed", func() bool { return codeOf2(saw, hot) == authz.CodeOK })
	for _, k := range []string{hot, cold} {
		revokeRetrying(t, pub, k)
	}
	testkit.Eventually(t, 15*time.Second, "revocation applied", func() bool { return codeOf2(saw, hot) == authz.CodeKeyRevoked })
	// Churn the small cache's memory with other keys.
	for i := range 300 {
		putActive(t, pub, fmt.Sprintf("sk_live_filler_%d", i), fmt.Sprintf("key_f%d", i), "acct_r")
		codeOf2(small, fmt.Sprintf("sk_live_filler_%d", i))
	}
	for _, k := range []string{hot, cold} {
		rawRevive(t, kv, k)
	}
	fresh := startInstance(t, instanceConfig{URLs: []string{s.URL()}})
	fresh.waitReady(10 * time.Second)
	for name, in := range map[string]*instance{"saw the revocation": saw, "small cache": small, "started after": fresh} {
		for _, k := range []string{hot, cold} {
			var got authz.Code
			// Never allowed, at any point after the revival.
			ok := testkit.Poll(3*time.Second, func() bool {
				got = codeOf2(in, k)
				if got == authz.CodeOK {
					t.Errorf("replica that %s allows a revived revoked key", name)
					return true
				}
				return got == authz.CodeKeyRevoked
			})
			if !ok || got != authz.CodeKeyRevoked {
				t.Errorf("replica that %s answers %v for a revived key; want key_revoked", name, got)
			}
		}
	}
	testkit.Eventually(t, 15*time.Second, "bucket repaired to revoked", func() bool {
		e, err := pub.GetKey(ctx, authz.APIKey(hot).Hash())
		return err == nil && e.Presence == authz.Present && e.Record.State == authz.StateRevoked
	})

	// A delete then a put is a new key, alike on every replica.
	h := authz.APIKey(hot).Hash()
	if _, err := pub.DeleteKey(ctx, h); err != nil {
		t.Fatalf("delete: %v", err)
	}
	putActive(t, pub, hot, "key_rh2", "acct_r")
	for name, in := range map[string]*instance{"saw the revocation": saw, "small cache": small, "started after": fresh} {
		var got authz.Code
		if !testkit.Poll(15*time.Second, func() bool { got = codeOf2(in, hot); return got == authz.CodeOK }) {
			v, err := pub.InspectKey(ctx, h)
			t.Errorf("re-created key: the replica that %s answers %v; the bucket holds %+v, tombstone %+v at %d (%v)",
				name, got, v.Stored, v.Tombstone, v.TombstoneRevision, err)
		}
	}
}

// TestRevokedDeletedRecreatedKeyAgrees revokes a key, deletes it and puts it
// again (the Publisher allows a put of a missing key): an instance that saw
// the revocation and one started afterwards must give the same decision.
func TestRevokedDeletedRecreatedKeyAgrees(t *testing.T) {
	s, conn, kv := startSingle(t)
	pub := events.NewPublisher(conn.JetStream(), kv)
	ctx := context.Background()
	const key = "sk_live_phoenix"
	h := authz.APIKey(key).Hash()
	if _, err := pub.SetBalance(ctx, "acct", testkit.Balance(t, "5")); err != nil {
		t.Fatal(err)
	}
	old := startInstance(t, instanceConfig{URLs: []string{s.URL()}})
	old.waitReady(5 * time.Second)
	rec := authz.KeyRecord{KeyID: "k", AccountID: "acct", State: authz.StateActive}
	if _, err := pub.PutKey(ctx, h, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Revoke(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.DeleteKey(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.PutKey(ctx, h, rec); err != nil {
		t.Fatalf("put after delete: %v", err)
	}
	fresh := startInstance(t, instanceConfig{URLs: []string{s.URL()}})
	fresh.waitReady(5 * time.Second)
	var a, b authz.Code
	if !testkit.Poll(2*time.Second, func() bool {
		a, _ = old.check(ctx, key)
		b, _ = fresh.check(ctx, key)
		return a == b
	}) {
		t.Errorf("the instance that saw the revocation answers %v, a fresh one %v; want the same", a, b)
	}
	t.Logf("both answer %v", a)
}

// rawRevive writes key back as active with a plain KV put, bypassing the
// Publisher's revoked-is-terminal check.
func rawRevive(tb testing.TB, kv interface {
	Put(context.Context, string, []byte) (uint64, error)
}, key string) {
	tb.Helper()
	v, err := json.Marshal(map[string]string{"key_id": "key_back", "account_id": "acct_r", "state": "active"})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "key."+authz.APIKey(key).Hash().String(), v); err != nil {
		tb.Fatalf("raw put: %v", err)
	}
}

// TestDeletedAndPutAgainAtOnceIsNewKey deletes a revoked key with the
// Publisher and puts it again while a replica that holds it as revoked is
// cut off, so that the put supersedes the record's delete marker before the
// replica's watch can read it: on reconnect the replica sees only the
// tombstone's removal and the new put. The new key is allowed there, and
// nothing writes it back as revoked.
func TestDeletedAndPutAgainAtOnceIsNewKey(t *testing.T) {
	s, conn, kv := startSingle(t)
	pub := events.NewPublisher(conn.JetStream(), kv)
	ctx := context.Background()
	proxy := testkit.NewProxy(t, strings.TrimPrefix(s.URL(), "nats://"))
	in := startInstance(t, instanceConfig{URLs: []string{"nats://" + proxy.Addr()}})
	in.waitReady(10 * time.Second)

	const key = "sk_live_reput_at_once"
	h := authz.APIKey(key).Hash()
	// A record older than all the key's changes keeps the stream's first
	// sequence where it is, so that the replica resumes its watch on
	// reconnect instead of resyncing fully.
	putActive(t, pub, "sk_live_reput_filler", "key_filler", "acct_filler")
	putActive(t, pub, key, "key_old", "acct_reput")
	testkit.Eventually(t, 15*time.Second, "key allowed", func() bool { return codeOf2(in, key) == authz.CodeOK })
	revokeRetrying(t, pub, key)
	testkit.Eventually(t, 15*time.Second, "revocation applied", func() bool { return codeOf2(in, key) == authz.CodeKeyRevoked })

	proxy.Cut(true)
	if _, err := pub.DeleteKey(ctx, h); err != nil {
		t.Fatalf("delete: %v", err)
	}
	putActive(t, pub, key, "key_new", "acct_reput")
	proxy.Cut(false)
	resyncs := in.metric("footstep_authz_watch_resyncs_total")

	var got authz.Code
	if !testkit.Poll(15*time.Second, func() bool { got = codeOf2(in, key); return got == authz.CodeOK }) {
		v, err := pub.InspectKey(ctx, h)
		t.Fatalf("the new key: the replica answers %v; the bucket holds %+v, tombstone %+v (%v)", got, v.Stored, v.Tombstone, err)
	}
	// Nothing may write the new key back as revoked: watch the bucket for
	// as long as a watcher's writes take to land.
	testkit.Poll(2*time.Second, func() bool {
		v, err := pub.InspectKey(ctx, h)
		if err != nil || v.Tombstone != nil || v.Stored.Record.State != authz.StateActive {
			t.Fatalf("the new key in the bucket: %+v, tombstone %+v (%v); want active without a tombstone", v.Stored, v.Tombstone, err)
		}
		return false
	})
	if got := codeOf2(in, key); got != authz.CodeOK {
		t.Errorf("the new key: the replica answers %v; want ok", got)
	}
	if n := in.metric("footstep_authz_watch_resyncs_total"); n != resyncs {
		t.Errorf("the replica resynced fully (%d times); the case needs a resumed watch", n-resyncs)
	}
}

// TestTombstoneOnlyThenDeletedAndPutAgainIsNewKey is the case above with a
// revocation the replica knows only by its tombstone when it is cut off: the
// Publisher that revoked the key stopped after the tombstone, before the
// revoked record. The replica's repair of the record (which revokes it
// when nobody else does) must not run against the new key once the key was
// deleted and put again: it is allowed, and nothing writes it back as
// revoked.
func TestTombstoneOnlyThenDeletedAndPutAgainIsNewKey(t *testing.T) {
	s, conn, kv := startSingle(t)
	pub := events.NewPublisher(conn.JetStream(), kv)
	ctx := context.Background()
	proxy := testkit.NewProxy(t, strings.TrimPrefix(s.URL(), "nats://"))
	in := startInstance(t, instanceConfig{URLs: []string{"nats://" + proxy.Addr()}})
	in.waitReady(10 * time.Second)

	const key = "sk_live_tomb_only_reput"
	h := authz.APIKey(key).Hash()
	putActive(t, pub, "sk_live_tomb_only_filler", "key_filler", "acct_filler")
	putActive(t, pub, key, "key_old", "acct_tomb")
	testkit.Eventually(t, 15*time.Second, "key allowed", func() bool { return codeOf2(in, key) == authz.CodeOK })
	tomb, err := events.EncodeTombstone(events.NewTombstone(authz.KeyRecord{KeyID: "key_old", AccountID: "acct_tomb", State: authz.StateActive}, 2, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, events.TombstoneKVKey(h), tomb); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	// Cut off as soon as the tombstone is applied: before the repair that
	// waits for the Publisher's own record write (100 ms) can run.
	testkit.Eventually(t, 15*time.Second, "tombstone applied", func() bool { return codeOf2(in, key) == authz.CodeKeyRevoked })
	proxy.Cut(true)
	if _, err := pub.DeleteKey(ctx, h); err != nil {
		t.Fatalf("delete: %v", err)
	}
	putActive(t, pub, key, "key_new", "acct_tomb")
	proxy.Cut(false)

	var got authz.Code
	if !testkit.Poll(15*time.Second, func() bool { got = codeOf2(in, key); return got == authz.CodeOK }) {
		v, err := pub.InspectKey(ctx, h)
		t.Fatalf("the new key: the replica answers %v; the bucket holds %+v, tombstone %+v (%v)", got, v.Stored, v.Tombstone, err)
	}
	testkit.Poll(2*time.Second, func() bool {
		v, err := pub.InspectKey(ctx, h)
		if err != nil || v.Tombstone != nil || v.Stored.Record.State != authz.StateActive {
			t.Fatalf("the new key in the bucket: %+v, tombstone %+v (%v); want active without a tombstone", v.Stored, v.Tombstone, err)
		}
		return false
	})
}
