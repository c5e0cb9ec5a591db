package reliability

import (
	"fmt"
	"testing"
	"time"

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
