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
