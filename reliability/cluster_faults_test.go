package reliability

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// stepdown asks JetStream to move the leader of subject's raft group.
func stepdown(tb testing.TB, conn *events.Conn, subject string) {
	tb.Helper()
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	testkit.Eventually(tb, 10*time.Second, "stepdown "+subject, func() bool {
		msg, err := conn.NATS().Request(subject, nil, 2*time.Second)
		if err != nil {
			return false
		}
		return json.Unmarshal(msg.Data, &resp) == nil && resp.Success
	})
}

// bucketStream reads the info of the bucket's stream.
func bucketStream(ctx context.Context, conn *events.Conn) (*jetstream.StreamInfo, error) {
	s, err := conn.JetStream().Stream(ctx, "KV_"+events.DefaultBucket)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// streamLeader returns the member that leads the bucket's stream.
func streamLeader(tb testing.TB, conn *events.Conn) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := bucketStream(ctx, conn)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// moveStreamLeader steps the bucket's stream leader down until node i leads
// it (lead) or does not.
func moveStreamLeader(tb testing.TB, conn *events.Conn, c *testkit.Cluster, i int, lead bool) {
	tb.Helper()
	testkit.Eventually(tb, 60*time.Second, "stream leader placement", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := bucketStream(ctx, conn)
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

// TestLeaderMovesWhileChangesFlow moves the bucket's stream leader three
// times while a publisher writes and two instances on
// different members answer checks: every decision reflects a state no older
// than a second, and both instances end with every change.
func TestLeaderMovesWhileChangesFlow(t *testing.T) {
	_, pubConn, tr, d, a, b := startClusterPair(t, 2, "lead", 4, 20)
	pub := startPublishing(d, 15*time.Millisecond)
	defer pub.stop()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	results := make([][]string, 2)
	checks := make([]int, 2)
	for i, in := range []*instance{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); checks[i], results[i] = boundedChecks(in, tr, d, enforceBound, stop) }()
	}
	var moves []string
	for range 3 {
		before := streamLeader(t, pubConn)
		stepdown(t, pubConn, "$JS.API.STREAM.LEADER.STEPDOWN.KV_"+events.DefaultBucket)
		testkit.Eventually(t, 10*time.Second, "a new stream leader", func() bool {
			l := streamLeader(t, pubConn)
			return l != "" && l != before
		})
		moves = append(moves, before+"->"+streamLeader(t, pubConn))
		n, _, _ := d.counts()
		if !testkit.Poll(10*time.Second, func() bool { m, _, _ := d.counts(); return m >= n+10 }) {
			d.mu.Lock()
			last := append([]string(nil), d.errLog[max(0, len(d.errLog)-5):]...)
			d.mu.Unlock()
			t.Fatalf("changes under the new leader: not within 10s; %d steps, %d errors; last errors %v", pub.steps.Load(), pub.errs.Load(), last)
		}
	}
	close(stop)
	wg.Wait()
	pub.stop()
	for _, v := range append(results[0], results[1]...) {
		t.Errorf("stale decision: %s", v)
	}
	ca := waitConverged(t, a, tr, d.keys(), 15*time.Second, "a")
	cb := waitConverged(t, b, tr, d.keys(), 15*time.Second, "b")
	n, unknown, refused := d.counts()
	t.Logf("leader moves %v; changes %d (unknown outcome %d, refused %d, publish errors %d); checks a %d b %d; converged a %s b %s",
		moves, n, unknown, refused, pub.errs.Load(), checks[0], checks[1], ca, cb)
}
