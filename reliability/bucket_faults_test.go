package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/events"
)

// TestBucketRecreatedResyncs deletes the bucket under a running instance and
// creates it again with other keys: the instance forgets every old key (they
// are invalid now) and knows every new one.
func TestBucketRecreatedResyncs(t *testing.T) {
	pubConn, _, old, in := startWithOldKeys(t, 3)

	ctx := context.Background()
	if err := pubConn.JetStream().DeleteKeyValue(ctx, events.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	kv2 := openBucket(t, pubConn, 1)
	fresh := newTruth()
	recent := seed(t, newDriver(events.NewPublisher(pubConn.JetStream(), kv2), fresh, 4, "new", 1), "new", 5)
	took := waitConverged(t, in, fresh, append(old, recent...), 10*time.Second, "after the bucket was recreated")
	t.Logf("resynced %s after the bucket was recreated (%s after the first new write); resyncs %d",
		time.Since(start), took, in.metric("footstep_authz_watch_resyncs_total"))
	if in.metric("footstep_authz_watch_resyncs_total") < 1 {
		t.Errorf("no full resync counted")
	}
}

// TestBucketPurgedResyncs purges the bucket's stream (every record gone, no
// delete markers) under a running instance: the instance must notice and
// forget every key, which is now invalid.
func TestBucketPurgedResyncs(t *testing.T) {
	pubConn, kv, old, in := startWithOldKeys(t, 5)

	ctx := context.Background()
	stream, err := pubConn.JetStream().Stream(ctx, "KV_"+events.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fresh := newTruth()
	recent := seed(t, newDriver(events.NewPublisher(pubConn.JetStream(), kv), fresh, 6, "new", 1), "new", 5)
	took := waitConverged(t, in, fresh, append(old, recent...), 3*time.Second, "after the stream was purged")
	t.Logf("resynced %s after the purge (%s after the first new write); resyncs %d", time.Since(start), took, in.metric("footstep_authz_watch_resyncs_total"))
}

// startWithOldKeys starts NATS and an instance, and seeds 20 "old" keys
// (the driver seeded with driverSeed) that the instance has converged on.
func startWithOldKeys(t *testing.T, driverSeed uint64) (*events.Conn, jetstream.KeyValue, []string, *instance) {
	t.Helper()
	s, pubConn, kv := startSingle(t)
	tr := newTruth()
	old := seed(t, newDriver(events.NewPublisher(pubConn.JetStream(), kv), tr, driverSeed, "old", 1), "old", 20)
	in := startInstance(t, instanceConfig{URLs: []string{s.URL()}})
	in.waitReady(5 * time.Second)
	waitConverged(t, in, tr, old, 15*time.Second, "before")
	return pubConn, kv, old, in
}
