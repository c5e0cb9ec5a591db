package reliability

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// partitionStaleness is --max-staleness in the partition tests.
const partitionStaleness = time.Second

// quorumGrace is how long a stream leader cut off into a minority can still
// answer as if current: until it has not heard from its peers for the
// watcher's peer activity limit (2.5 s), plus a probe.
const quorumGrace = 2700 * time.Millisecond

// TestPartitionedServerGoesStale connects a replica to a NATS server that
// keeps its client connection but loses its routes to the rest of the
// cluster, once while that server leads the bucket's stream and once while
// it follows. Keys revoked through the majority meanwhile must never be
// allowed past the staleness bound: hot (cached) and cold alike are answered
// 503 once the replica is stale, it reports not ready, and after the
// partition heals it enforces the revocations.
func TestPartitionedServerGoesStale(t *testing.T) {
	for _, leads := range []bool{false, true} {
		t.Run(fmt.Sprintf("cut-off-node-leads=%v", leads), func(t *testing.T) { testPartition(t, leads) })
	}
}

func testPartition(t *testing.T, cutLeads bool) {
	c := testkit.StartCluster(t, testkit.WithRouteProxies())
	const cut = 2
	pubConn := connectMember(t, c, 0)
	kv := openBucket(t, pubConn, 3)
	moveStreamLeader(t, pubConn, c, cut, cutLeads)
	pub := events.NewPublisher(pubConn.JetStream(), kv)
	in := startInstance(t, instanceConfig{URLs: []string{c.URL(cut)}, Replicas: 3, MaxStaleness: partitionStaleness})
	in.waitReady(20 * time.Second)

	hot, cold := "sk_live_partition_hot_1", "sk_live_partition_cold_1"
	putActive(t, pub, hot, "key_hot", "acct_p")
	putActive(t, pub, cold, "key_cold", "acct_p")
	testkit.Eventually(t, 15*time.Second, "hot key allowed", func() bool { return codeOf2(in, hot) == authz.CodeOK })

	c.Partition(cut, true)
	cutAt := time.Now()
	revokeRetrying(t, pub, hot)
	revokeRetrying(t, pub, cold)
	ackedAt := time.Now()
	t.Logf("revocations acknowledged by the majority %s after the partition", ackedAt.Sub(cutAt).Round(time.Millisecond))

	// From the bound on, nothing may be allowed: stale means 503.
	bound := cutAt.Add(quorumGrace + partitionStaleness + 500*time.Millisecond*raceSlowdown)
	staleAt := time.Time{}
	end := bound
	if ackedAt.After(end) {
		end = ackedAt // the majority may take a few seconds to elect a leader and acknowledge
	}
	for time.Now().Before(end.Add(2 * time.Second)) {
		for _, k := range []string{hot, cold} {
			got := codeOf2(in, k)
			now := time.Now()
			if got == authz.CodeOK && now.After(bound) && now.After(ackedAt) {
				t.Fatalf("%s allowed %s after the partition (bound %s)", k, now.Sub(cutAt).Round(time.Millisecond), bound.Sub(cutAt))
			}
			if got == authz.CodeUnavailable && staleAt.IsZero() {
				staleAt = now
			}
		}
		time.Sleep(5 * time.Millisecond) // pacing the checks, not waiting for an effect
	}
	if staleAt.IsZero() {
		t.Fatal("the cut-off replica never answered 503")
	}
	t.Logf("cut-off replica answered 503 from %s after the partition", staleAt.Sub(cutAt).Round(time.Millisecond))
	if st := in.status(); st.Ready || !st.Stale || !st.Connected {
		t.Errorf("status while cut off = %+v; want not ready, stale, client still connected", st)
	}

	c.Partition(cut, false)
	healedAt := time.Now()
	testkit.Eventually(t, 30*time.Second, "revocations enforced after the heal", func() bool {
		return codeOf2(in, hot) == authz.CodeKeyRevoked && codeOf2(in, cold) == authz.CodeKeyRevoked
	})
	testkit.Eventually(t, 10*time.Second, "ready after the heal", func() bool { return in.status().Ready })
	t.Logf("revocations enforced and ready %s after the heal", time.Since(healedAt).Round(time.Millisecond))
}

// codeOf2 asks in about key, reading a transport error as 503.
func codeOf2(in *instance, key string) authz.Code {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := in.check(ctx, key)
	if err != nil {
		return authz.CodeUnavailable
	}
	return got
}

// putActive writes an active key on an account with credit.
func putActive(tb testing.TB, pub *events.Publisher, key, keyID, account string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := authz.ParseBalance("10.00")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pub.SetBalance(ctx, account, b); err != nil {
		tb.Fatalf("set balance: %v", err)
	}
	rec := authz.KeyRecord{KeyID: keyID, AccountID: account, State: authz.StateActive}
	if _, err := pub.PutKey(ctx, authz.APIKey(key).Hash(), rec); err != nil {
		tb.Fatalf("put key: %v", err)
	}
}

// revokeRetrying revokes key, retrying while the cluster elects a leader.
func revokeRetrying(tb testing.TB, pub *events.Publisher, key string) {
	tb.Helper()
	var err error
	ok := testkit.Poll(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = pub.Revoke(ctx, authz.APIKey(key).Hash())
		return err == nil || errors.Is(err, authz.ErrRevokedTerminal)
	})
	if !ok {
		tb.Fatalf("revoke: %v", err)
	}
}

// moveStreamLeader steps the bucket's stream leader down until node i leads
// it (lead) or does not.
func moveStreamLeader(tb testing.TB, conn *events.Conn, c *testkit.Cluster, i int, lead bool) {
	tb.Helper()
	js := conn.JetStream()
	testkit.Eventually(tb, 60*time.Second, "stream leader placement", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "KV_"+events.DefaultBucket)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		if (info.Cluster.Leader == c.Name(i)) == lead && allCurrent(info) {
			return true
		}
		_, _ = conn.NATS().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN.KV_"+events.DefaultBucket, nil)
		time.Sleep(200 * time.Millisecond) // let the election settle before asking again
		return false
	})
}

func allCurrent(info *jetstream.StreamInfo) bool {
	for _, p := range info.Cluster.Replicas {
		if p == nil || !p.Current || p.Offline {
			return false
		}
	}
	return len(info.Cluster.Replicas) == 2
}
