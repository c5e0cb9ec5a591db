package reliability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// Fault schedule settings.
const (
	scheduleStaleness = time.Second
	// scheduleBound is how old a state a decision may still reflect: a
	// replica cut off behind a stream leader that does not know yet that it
	// lost its quorum (quorumGrace), then --max-staleness, then the health
	// loop and a probe.
	scheduleBound    = (quorumGrace + scheduleStaleness + time.Second) * raceSlowdown
	scheduleCheckers = 6
)

// scheduleLength is how long TestFaultSchedule runs: FOOTSTEP_FAULTS_DURATION,
// else 30 s (make ci runs 2 minutes, make soak longer).
func scheduleLength(t *testing.T) time.Duration {
	if v := os.Getenv("FOOTSTEP_FAULTS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("FOOTSTEP_FAULTS_DURATION=%q: want a duration such as 2m", v)
		}
		return d
	}
	if testing.Short() {
		return 10 * time.Second
	}
	return 30 * time.Second
}

// TestFaultSchedule runs a randomized schedule of faults on a three-node
// cluster (a node killed and restarted, a node partitioned from the others
// with its clients still connected, a node restarted at once) while a
// publisher churns keys and balances through whichever node answers, and
// three replicas (two pinned to one node each, one given every node) answer
// Checks. No replica may answer what no state newer than scheduleBound
// allows, be it an allow or a denial (503 fails closed and is counted, not a
// violation). Once the faults end every replica, and one started only then,
// converges on every change: nothing is lost.
func TestFaultSchedule(t *testing.T) {
	length := scheduleLength(t)
	c := testkit.StartCluster(t, testkit.WithRouteProxies())
	pubConn := connectTo(t, "test-publisher", c.URLs()...)
	kv := openBucket(t, pubConn, 3)
	tr := newTruth()
	d := newDriver(events.NewPublisher(pubConn.JetStream(), kv), tr, 23, "sched", 5)
	logs := &testkit.LogBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("instance logs:\n%s", logs.String())
		}
	}()
	var ins []*instance
	for i, urls := range [][]string{{c.URL(0)}, c.URLs(), {c.URL(2)}} {
		log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", i)
		in := startInstance(t, instanceConfig{URLs: urls, Replicas: 3, MaxStaleness: scheduleStaleness, Logger: log})
		in.waitReady(20 * time.Second)
		ins = append(ins, in)
	}
	pubs := &publishing{d: d, every: 15 * time.Millisecond}
	pubs.start()
	defer pubs.stop()

	// A decision may reflect no state older than the bound, allow or deny:
	// a stale allow gives the API away, a stale denial takes a paying
	// client down.
	stats := &soakStats{}
	stopCheckers := startCheckers(scheduleCheckers, ins, tr, d, scheduleBound, 29, stats)
	recreate := func() {
		pubs.stop() // no write races the deletion: its outcome would be unknowable
		recreateBucket(t, pubConn, d)
		pubs.start()
	}
	faults := runFaults(t, c, logs, time.Now().Add(length), recreate)
	stopCheckers()
	pubs.stop()
	// Reported before convergence is awaited: a replica that does not
	// converge stops the test, and the stale decisions seen on the way are
	// what explains it.
	changes, unknown, refused := d.counts()
	t.Logf("faults %s: %v", length, faults)
	t.Logf("%d checks, %d allowed, %d answered 503, %d transport errors, %d stale decisions beyond %s; changes %d (unknown outcome %d, refused %d, publish errors %d)",
		stats.checks.Load(), stats.allowed.Load(), stats.unavailable.Load(), stats.errs.Load(), stats.violations.Load(), scheduleBound,
		changes, unknown, refused, pubs.errs)
	for _, ex := range stats.examples {
		t.Errorf("stale decision: %s", ex)
	}
	if stats.checks.Load() == 0 || changes == 0 {
		t.Errorf("no load: %d checks, %d changes", stats.checks.Load(), changes)
	}
	// A replica started after the whole history (revocations, revivals,
	// recreations, faults) must agree with those that lived through it.
	late := startInstance(t, instanceConfig{URLs: c.URLs(), Replicas: 3, MaxStaleness: scheduleStaleness,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", "late")})
	late.waitReady(20 * time.Second)
	ins = append(ins, late)
	for i, in := range ins {
		took := waitConverged(t, in, tr, d.keys(), 30*time.Second, fmt.Sprintf("replica %d after the faults", i))
		t.Logf("replica %d converged on every change %s after the last fault", i, took.Round(time.Millisecond))
	}
}

// runFaults applies random faults, one node at a time, until end; it
// returns how many of each it applied. recreate deletes and recreates the
// bucket (rarely: one fault in eight).
func runFaults(t *testing.T, c *testkit.Cluster, logs *testkit.LogBuffer, end time.Time, recreate func()) map[string]int {
	rng := rand.New(rand.NewPCG(31, 37))
	count := map[string]int{}
	mark := func(msg string) {
		fmt.Fprintf(logs, "%s TEST: %s\n", time.Now().Format("15:04:05.000"), msg)
	}
	for time.Now().Before(end) {
		n := rng.IntN(3)
		hold := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		kinds := []string{"kill", "partition", "restart", "kill", "partition", "restart", "kill", "recreate"}
		switch kind := kinds[rng.IntN(len(kinds))]; kind {
		case "recreate":
			mark("bucket deleted and recreated")
			recreate()
			count["recreate"]++
		case "kill":
			mark(fmt.Sprintf("kill n%d for %s", n, hold))
			c.Stop(n)
			waitUntil(time.Now().Add(hold)) // the outage itself
			c.Start(n)
			count["kill"]++
		case "partition":
			mark(fmt.Sprintf("partition n%d for %s", n, hold))
			c.Partition(n, true)
			waitUntil(time.Now().Add(hold))
			c.Partition(n, false)
			count["partition"]++
		case "restart":
			mark(fmt.Sprintf("restart n%d", n))
			c.Stop(n)
			c.Start(n)
			count["restart"]++
		}
		mark("healed; waiting for the cluster")
		c.WaitJetStream()
		waitUntil(time.Now().Add(time.Duration(500+rng.IntN(1500)) * time.Millisecond)) // time between faults
	}
	return count
}

// publishing is a publish loop that can be stopped and started again.
type publishing struct {
	d     *driver
	every time.Duration
	cur   *publishLoop
	errs  int64
}

func (p *publishing) start() { p.cur = startPublishing(p.d, p.every) }

func (p *publishing) stop() {
	if p.cur != nil {
		p.cur.stop()
		p.errs += p.cur.errs.Load()
		p.cur = nil
	}
}

// recreateBucket deletes the bucket and creates it again, empty: from the
// deletion on, every key and account is absent (a new key with an old hash
// is a new key), and the driver starts creating keys afresh.
func recreateBucket(tb testing.TB, conn *events.Conn, d *driver) {
	tb.Helper()
	wiped := d.truth.wipe()
	testkit.Eventually(tb, 20*time.Second, "delete the bucket", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := conn.JetStream().DeleteKeyValue(ctx, events.DefaultBucket)
		return err == nil || errors.Is(err, jetstream.ErrBucketNotFound)
	})
	wiped()
	d.wipe()
	openBucket(tb, conn, 3)
}
