package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
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

// reputCase is a replica behind a proxy to a NATS server, allowing a key,
// for the tests that delete the key and put it again while the replica is
// cut off.
type reputCase struct {
	t        *testing.T
	fresh    string // where a replica started afterwards connects
	replicas int    // the bucket's
	pub      *events.Publisher
	kv       jetstream.KeyValue
	proxy    *testkit.Proxy
	in       *instance
	logs     *testkit.LogBuffer // the replica's warnings
	key      string
	h        authz.KeyHash
}

// startReput starts the case on a single NATS server.
func startReput(t *testing.T, key, account string) *reputCase {
	s, conn, kv := startSingle(t)
	return startReputOn(t, key, account, s.URL(), s.URL(), conn, kv, 1)
}

// startReputOn starts the replica behind a proxy to the server at url, with
// the bucket kv (replicated replicas times) written through conn, and puts
// key (as key_old, on account) once it is allowed. A record older than all
// the key's changes keeps the stream's first sequence where it is, so that
// the replica resumes its watch on reconnect instead of resyncing fully.
func startReputOn(t *testing.T, key, account, url, fresh string, conn *events.Conn, kv jetstream.KeyValue, replicas int) *reputCase {
	c := &reputCase{t: t, fresh: fresh, replicas: replicas, pub: events.NewPublisher(conn.JetStream(), kv), kv: kv,
		logs: &testkit.LogBuffer{}, key: key, h: authz.APIKey(key).Hash()}
	c.proxy = testkit.NewProxy(t, strings.TrimPrefix(url, "nats://"))
	c.in = startInstance(t, instanceConfig{URLs: []string{"nats://" + c.proxy.Addr()}, Replicas: replicas, Logger: c.logs.Logger(slog.LevelWarn)})
	c.in.waitReady(10 * time.Second)
	putActive(t, c.pub, key+"_filler", "key_filler", "acct_filler")
	putActive(t, c.pub, key, "key_old", account)
	testkit.Eventually(t, 15*time.Second, "key allowed", func() bool { return codeOf2(c.in, key) == authz.CodeOK })
	return c
}

// deleteAndPutWhileCut cuts the replica off, deletes the key with the
// Publisher and puts it again as key_new, so that the put supersedes the
// record's delete marker before the replica's watch can read it, and
// reconnects the replica.
func (c *reputCase) deleteAndPutWhileCut(account string) {
	c.proxy.Cut(true)
	if _, err := c.pub.DeleteKey(context.Background(), c.h); err != nil {
		c.t.Fatalf("delete: %v", err)
	}
	putActive(c.t, c.pub, c.key, "key_new", account)
	c.proxy.Cut(false)
}

// wantNewKeyAllowed waits until the replica allows the new key, then
// watches the bucket for as long as a watcher's writes take to land:
// nothing may write the new key back as revoked.
func (c *reputCase) wantNewKeyAllowed() {
	ctx := context.Background()
	var got authz.Code
	if !testkit.Poll(15*time.Second, func() bool { got = codeOf2(c.in, c.key); return got == authz.CodeOK }) {
		v, err := c.pub.InspectKey(ctx, c.h)
		c.t.Fatalf("the new key: the replica answers %v; the bucket holds %+v, tombstone %+v (%v)", got, v.Stored, v.Tombstone, err)
	}
	testkit.Poll(2*time.Second, func() bool {
		v, err := c.pub.InspectKey(ctx, c.h)
		if err != nil || v.Tombstone != nil || v.Stored.Record.State != authz.StateActive {
			c.t.Fatalf("the new key in the bucket: %+v, tombstone %+v (%v); want active without a tombstone", v.Stored, v.Tombstone, err)
		}
		return false
	})
}

// TestDeletedAndPutAgainAtOnceIsNewKey deletes a revoked key with the
// Publisher and puts it again while a replica that holds it as revoked is
// cut off: on reconnect the replica sees only the tombstone's removal and
// the new put. The new key is allowed there, and nothing writes it back as
// revoked.
func TestDeletedAndPutAgainAtOnceIsNewKey(t *testing.T) {
	c := startReput(t, "sk_live_reput_at_once", "acct_reput")
	revokeRetrying(t, c.pub, c.key)
	testkit.Eventually(t, 15*time.Second, "revocation applied", func() bool { return codeOf2(c.in, c.key) == authz.CodeKeyRevoked })

	c.deleteAndPutWhileCut("acct_reput")
	resyncs := c.in.metric("footstep_authz_watch_resyncs_total")
	c.wantNewKeyAllowed()
	if got := codeOf2(c.in, c.key); got != authz.CodeOK {
		t.Errorf("the new key: the replica answers %v; want ok", got)
	}
	if n := c.in.metric("footstep_authz_watch_resyncs_total"); n != resyncs {
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
	c := startReput(t, "sk_live_tomb_only_reput", "acct_tomb")
	tomb, err := events.EncodeTombstone(events.NewTombstone(authz.KeyRecord{KeyID: "key_old", AccountID: "acct_tomb", State: authz.StateActive}, 2, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.kv.Create(context.Background(), events.TombstoneKVKey(c.h), tomb); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	// Cut off as soon as the tombstone is applied: before the repair that
	// waits for the Publisher's own record write (100 ms) can run.
	testkit.Eventually(t, 15*time.Second, "tombstone applied", func() bool { return codeOf2(c.in, c.key) == authz.CodeKeyRevoked })
	c.deleteAndPutWhileCut("acct_tomb")
	c.wantNewKeyAllowed()
}

// rawRevokeUnseen revokes the key with a plain revoked record, which the
// replica applies while the proxy holds what it sends: its tombstone write
// times out, and no tombstone ever stands.
func (c *reputCase) rawRevokeUnseen(account string) {
	t := c.t
	// The replica must apply the revocation from its watch, not read it:
	// the hold would stop the read. So its key index must be complete (until
	// then a key that changes is forgotten, and read again), and the key
	// cached, which a Check answered without a lookup shows.
	testkit.Eventually(t, 15*time.Second, "key index complete", func() bool { return c.in.metric("footstep_authz_watch_index_complete") == 1 })
	testkit.Eventually(t, 15*time.Second, "key cached", func() bool {
		misses := c.in.metric("footstep_authz_cache_misses_total")
		return codeOf2(c.in, c.key) == authz.CodeOK && c.in.metric("footstep_authz_cache_misses_total") == misses
	})
	c.proxy.Hold(true)
	v, err := json.Marshal(map[string]string{"key_id": "key_old", "account_id": account, "state": "revoked"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.kv.Put(context.Background(), events.KeyKVKey(c.h), v); err != nil {
		t.Fatalf("raw revoke: %v", err)
	}
	var got authz.Code
	if !testkit.Poll(15*time.Second, func() bool { got = codeOf2(c.in, c.key); return got == authz.CodeKeyRevoked }) {
		t.Fatalf("the raw revocation: the replica answers %v; want key_revoked; its warnings: %s", got, c.logs.String())
	}
	testkit.Eventually(t, 15*time.Second, "the replica's tombstone write failed", func() bool {
		return strings.Contains(c.logs.String(), `"write":"create tombstone"`)
	})
	if v, err := c.pub.InspectKey(context.Background(), c.h); err != nil || v.Tombstone != nil {
		t.Fatalf("before the delete: tombstone %+v (%v); want none", v.Tombstone, err)
	}
}

// wantNewKeyAllowedAfterwards checks that a replica started now allows the
// new key.
func (c *reputCase) wantNewKeyAllowedAfterwards() {
	fresh := startInstance(c.t, instanceConfig{URLs: []string{c.fresh}, Replicas: c.replicas})
	fresh.waitReady(10 * time.Second)
	if got := codeOf2(fresh, c.key); got != authz.CodeOK {
		c.t.Errorf("the new key on a replica started afterwards: %v; want ok", got)
	}
}

// TestRawRevokedThenDeletedAndPutAgainIsNewKey is the case above with a
// revocation written as a plain revoked record, whose tombstone the replica
// could not write before it was cut off (the proxy holds what it sends):
// no tombstone ever stood, so the replica knows the revocation only by the
// record. The Publisher's delete leaves a marker where the tombstone would
// be, which the put of the new key cannot supersede: on reconnect the
// replica sees the key's revocation end, and the put after it is a new key.
// Nothing writes it back as revoked, nor gives it a tombstone, and a replica
// started afterwards allows it too.
func TestRawRevokedThenDeletedAndPutAgainIsNewKey(t *testing.T) {
	c := startReput(t, "sk_live_raw_revoked_reput", "acct_raw")
	c.rawRevokeUnseen("acct_raw")
	c.deleteAndPutWhileCut("acct_raw")
	c.wantNewKeyAllowed()
	c.wantNewKeyAllowedAfterwards()
}

// TestRawRevokedThenDeletedAndPutAgainWhileMemberDown is that case in a
// three-node cluster: the replica's member is killed while the replica is
// cut off, the key is deleted and put again through the two left, and the
// member restarts and catches up before the replica reconnects to it. The
// replica allows the new key, and so does one started afterwards on
// another member.
func TestRawRevokedThenDeletedAndPutAgainWhileMemberDown(t *testing.T) {
	cl := testkit.StartCluster(t)
	conn := connectMember(t, cl, 2)
	kv := openBucket(t, conn, 3)
	c := startReputOn(t, "sk_live_raw_revoked_member_down", "acct_raw", cl.URL(0), cl.URL(1), conn, kv, 3)
	c.rawRevokeUnseen("acct_raw")
	c.proxy.Cut(true)
	cl.Stop(0)
	if _, err := c.pub.DeleteKey(context.Background(), c.h); err != nil {
		t.Fatalf("delete: %v", err)
	}
	putActive(t, c.pub, c.key, "key_new", "acct_raw")
	cl.Start(0)
	cl.WaitJetStream()
	c.proxy.Cut(false)
	c.wantNewKeyAllowed()
	c.wantNewKeyAllowedAfterwards()
}
