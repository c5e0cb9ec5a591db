package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

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
