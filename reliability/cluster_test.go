package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// connectTo connects to urls with the production connection settings, as
// name (empty: the default client name), and closes at the end.
func connectTo(tb testing.TB, name string, urls ...string) *events.Conn {
	tb.Helper()
	conn, err := events.Connect(context.Background(), events.ConnConfig{URLs: urls, Name: name})
	if err != nil {
		tb.Fatalf("connect to %v: %v", urls, err)
	}
	tb.Cleanup(conn.Close)
	return conn
}

// connectMember connects to cluster member i, named after it.
func connectMember(tb testing.TB, c *testkit.Cluster, i int) *events.Conn {
	tb.Helper()
	return connectTo(tb, "test-"+c.Name(i), c.URL(i))
}

// openBucket opens (creating, replicated replicas times) the bucket through
// conn, retrying while the cluster settles.
func openBucket(tb testing.TB, conn *events.Conn, replicas int) jetstream.KeyValue {
	tb.Helper()
	var kv jetstream.KeyValue
	var last error
	testkit.Eventually(tb, 20*time.Second, "open bucket", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		kv, last = events.OpenBucket(ctx, conn.JetStream(), events.BucketConfig{Replicas: replicas})
		return last == nil
	})
	return kv
}

// startSingle starts one NATS server and opens the bucket on it through a
// connection of its own, which a test publishes through.
func startSingle(tb testing.TB) (*testkit.NATS, *events.Conn, jetstream.KeyValue) {
	tb.Helper()
	s := testkit.StartNATS(tb)
	conn := connectTo(tb, "", s.URL())
	return s, conn, openBucket(tb, conn, 1)
}

// startClusterPair starts a cluster, a driver (seed, prefix, accounts) that
// publishes through member 2, and two synced instances, a on member 0 and b
// on member 1, after the driver made steps changes.
func startClusterPair(t *testing.T, seed uint64, prefix string, accounts, steps int) (c *testkit.Cluster, pubConn *events.Conn, tr *truth, d *driver, a, b *instance) {
	t.Helper()
	c = testkit.StartCluster(t)
	pubConn = connectMember(t, c, 2)
	kv := openBucket(t, pubConn, 3)
	tr = newTruth()
	d = newDriver(events.NewPublisher(pubConn.JetStream(), kv), tr, seed, prefix, accounts)
	a = startInstance(t, instanceConfig{URLs: []string{c.URL(0)}, Replicas: 3})
	b = startInstance(t, instanceConfig{URLs: []string{c.URL(1)}, Replicas: 3})
	a.waitReady(10 * time.Second)
	b.waitReady(10 * time.Second)
	for range steps {
		if err := d.step(context.Background()); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	return c, pubConn, tr, d, a, b
}
