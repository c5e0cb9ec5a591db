package reliability

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/internal/testkit"
)

// enforceBound is how soon after an instance reconnects (or after a change
// is written, while connected) every change must be enforced: one second,
// as the issue asks, and twice that under the race detector, which slows
// the code several times over while the other packages' tests share the two
// cores. The figures logged are what was measured either way.
const enforceBound = time.Second * raceSlowdown

// publishLoop makes one change every interval until stopped, and counts the
// steps that met a NATS failure.
type publishLoop struct {
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	errs  atomic.Int64
	steps atomic.Int64
}

// startPublishing makes one change every interval until stop. A stop waits
// for the change in flight instead of cancelling it: a write cancelled after
// it was sent may still land after the driver read the record back, and the
// truth would then miss it.
func startPublishing(d *driver, every time.Duration) *publishLoop {
	p := &publishLoop{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
			}
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := d.step(sctx); err != nil {
				p.errs.Add(1)
			}
			scancel()
			p.steps.Add(1)
		}
	}()
	return p
}

func (p *publishLoop) stop() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}

// mismatch returns the first key on which in does not give the final
// decision, or "" when it gives every one.
func mismatch(in *instance, tr *truth, keys []string) string {
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := in.check(ctx, k)
		cancel()
		if want := tr.final(k); err != nil || got != want {
			return fmt.Sprintf("%s: got %v (%v), want %v", k, got, err, want)
		}
	}
	return ""
}

// waitConverged polls until in gives the final decision for every key and
// returns how long that took.
func waitConverged(tb testing.TB, in *instance, tr *truth, keys []string, within time.Duration, what string) time.Duration {
	tb.Helper()
	tr.confirm(tb)
	start := time.Now()
	var last string
	if !testkit.Poll(within, func() bool { last = mismatch(in, tr, keys); return last == "" }) {
		tb.Fatalf("%s: not converged within %s: %s", what, within, last)
	}
	return time.Since(start)
}

// boundedChecks checks random keys on in until stop closes, asserting that
// each decision matches a state no older than bound at the time of the call;
// it returns the number of checks and the violations.
func boundedChecks(in *instance, tr *truth, d *driver, bound time.Duration, stop <-chan struct{}) (checks int, violations []string) {
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return checks, violations
		default:
		}
		keys := d.keys()
		k := keys[i%len(keys)]
		s := time.Now()
		got, err := in.check(ctx, k)
		e := time.Now()
		checks++
		if ok := tr.acceptable(k, s, e, bound); err != nil || !ok[got] {
			violations = append(violations, fmt.Sprintf("%s at +%s: got %v (%v), acceptable %v", k, s.Format("15:04:05.000"), got, err, ok))
		}
	}
}

// TestMemberKilledAndRestarted kills the cluster member that one instance
// uses while changes keep flowing through another member, then restarts it:
// the other instance keeps up meanwhile, and from one second after the cut-off
// instance reconnects every decision it gives reflects every change no older
// than a second, and both end with every change.
func TestMemberKilledAndRestarted(t *testing.T) {
	c, _, tr, d, a, b := startClusterPair(t, 1, "kill", 4, 30)
	waitConverged(t, a, tr, d.keys(), 15*time.Second, "a before the kill")

	pub := startPublishing(d, 20*time.Millisecond)
	defer pub.stop()
	c.Stop(0)
	testkit.Eventually(t, 15*time.Second, "a notices the kill", func() bool { return !a.status().Connected })
	changesBefore, _, _ := d.counts()
	testkit.Eventually(t, 10*time.Second, "changes while a is cut off", func() bool {
		n, _, _ := d.counts()
		return n >= changesBefore+30
	})
	var stopB = make(chan struct{})
	var bChecks int
	var bViolations []string
	var bDone sync.WaitGroup
	bDone.Add(1)
	go func() { defer bDone.Done(); bChecks, bViolations = boundedChecks(b, tr, d, enforceBound, stopB) }()

	c.Start(0)
	testkit.Eventually(t, 10*time.Second, "a reconnects", func() bool { return a.status().Connected })
	reconnectedAt := time.Now()
	took := waitCaughtUp(t, a, tr, d.keys, reconnectedAt, 10*time.Second, "a after reconnect")
	t.Logf("a enforced every change written while cut off %s after reconnecting", took)
	if took > enforceBound {
		t.Errorf("a caught up %s after reconnecting; want within %s", took, enforceBound)
	}
	// From a second after the reconnect, a must stay within the bound while
	// changes keep flowing.
	if wait := time.Until(reconnectedAt.Add(enforceBound)); wait > 0 {
		time.Sleep(wait) // a fixed point in time to start asserting from, not an effect
	}
	stopA := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(stopA) })
	aChecks, aViolations := boundedChecks(a, tr, d, enforceBound, stopA)
	close(stopB)
	bDone.Wait()
	pub.stop()
	for _, v := range append(aViolations, bViolations...) {
		t.Errorf("stale decision: %s", v)
	}
	ca := waitConverged(t, a, tr, d.keys(), 15*time.Second, "a at the end")
	cb := waitConverged(t, b, tr, d.keys(), 15*time.Second, "b at the end")
	n, unknown, refused := d.counts()
	t.Logf("changes %d (unknown outcome %d, refused %d); checks a %d, b %d; final convergence a %s, b %s; watch resyncs a %d b %d",
		n, unknown, refused, aChecks, bChecks, ca, cb, a.metric("footstep_authz_watch_resyncs_total"), b.metric("footstep_authz_watch_resyncs_total"))
}

// caughtUp returns the first key on which in gives a decision from a state
// replaced before since, or "" when every decision reflects every change
// acknowledged before since.
func caughtUp(in *instance, tr *truth, keys []string, since time.Time) string {
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := in.check(ctx, k)
		cancel()
		if ok := tr.acceptable(k, since, time.Now(), 0); err != nil || !ok[got] {
			return fmt.Sprintf("%s: got %v (%v), acceptable %v", k, got, err, ok)
		}
	}
	return ""
}

// waitCaughtUp polls until caughtUp holds and returns how long after since.
func waitCaughtUp(tb testing.TB, in *instance, tr *truth, keys func() []string, since time.Time, within time.Duration, what string) time.Duration {
	tb.Helper()
	var last string
	if !testkit.Poll(within, func() bool { last = caughtUp(in, tr, keys(), since); return last == "" }) {
		tb.Fatalf("%s: not caught up within %s: %s", what, within, last)
	}
	return time.Since(since)
}
