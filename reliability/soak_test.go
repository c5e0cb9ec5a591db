package reliability

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// soakDuration is how long TestSoak runs: -soak=10m, else
// FOOTSTEP_SOAK_DURATION, else 15 s (5 s with -short).
var soakDuration = flag.Duration("soak", 0, "duration of TestSoak (default $FOOTSTEP_SOAK_DURATION, else 15s)")

// Soak settings.
const (
	soakBound        = 2 * time.Second       // a decision may reflect a state replaced this long ago
	soakChangeGap    = 10 * time.Millisecond // one change every 10 ms: 100 changes/s
	soakCheckers     = 8                     // goroutines sending Checks over gRPC
	soakOutage       = 500 * time.Millisecond
	soakStaleness    = 5 * time.Second // the instances' staleness gate
	soakRestartEvery = time.Minute     // NATS restarts at most this far apart
)

func soakLength(t *testing.T) time.Duration {
	if *soakDuration > 0 {
		return *soakDuration
	}
	if v := os.Getenv("FOOTSTEP_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FOOTSTEP_SOAK_DURATION: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 5 * time.Second
	}
	return 15 * time.Second
}

// vitals is what must stay flat over a soak.
type vitals struct {
	goroutines int
	heapInuse  uint64 // after a GC
	mallocs    uint64
	rssKiB     int64
}

func readVitals(t *testing.T) vitals {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return vitals{goroutines: runtime.NumGoroutine(), heapInuse: m.HeapInuse, mallocs: m.Mallocs, rssKiB: rssKiB(t)}
}

// rssKiB reads the resident set size from /proc/self/status; -1 elsewhere.
func rssKiB(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				t.Logf("VmRSS %q: %v", v, err)
			}
			return kib
		}
	}
	return -1
}

// soakStats counts what the checkers saw.
type soakStats struct {
	checks, allowed, unavailable, errs, violations atomic.Int64
	mu                                             sync.Mutex
	examples                                       []string
}

func (s *soakStats) violation(msg string) {
	s.violations.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.examples) < 10 {
		s.examples = append(s.examples, msg)
	}
}

// TestSoak runs sustained Check load over gRPC on two instances while a
// publisher changes keys and balances at a steady rate and the NATS server is
// restarted now and then. Every decision must match a state no older than
// soakBound (503 is counted, not a violation: it fails closed); goroutines
// and heap must be as flat at the end as after the warm-up.
func TestSoak(t *testing.T) {
	length := soakLength(t)
	s, pubConn, kv := startSingle(t)
	tr := newTruth()
	d := newDriver(events.NewPublisher(pubConn.JetStream(), kv), tr, 11, "soak", 6)
	var ins []*instance
	logs := &testkit.LogBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("instance logs:\n%s", logs.String())
			d.mu.Lock()
			t.Logf("publisher errors: %v", d.errLog)
			d.mu.Unlock()
		}
	}()
	for i := range 2 {
		log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", i)
		in := startInstance(t, instanceConfig{URLs: []string{s.URL()}, MaxStaleness: soakStaleness, Logger: log})
		in.waitReady(5 * time.Second)
		ins = append(ins, in)
	}
	pub := startPublishing(d, soakChangeGap)
	defer pub.stop()

	stats := &soakStats{}
	stopCheckers := startCheckers(soakCheckers, ins, tr, d, soakBound, 17, stats)

	began := time.Now()
	warm := min(2*time.Second, length/5)
	waitUntil(began.Add(warm))
	start, startChecks := readVitals(t), stats.checks.Load()
	// A second reading a third of the way in, once the caches, the reused
	// answers and NATS's block caches are warm, tells growth from warm-up.
	var mid vitals
	midAt := began.Add(length / 3)
	readMid := func() {
		if mid.goroutines == 0 {
			waitUntil(midAt)
			mid = readVitals(t)
		}
	}
	restarts := 0
	for n := 1; ; n++ {
		next := began.Add(time.Duration(n) * min(length/3, soakRestartEvery))
		if next.After(began.Add(length - length/6)) {
			break
		}
		if !next.Before(midAt) {
			readMid()
		}
		waitUntil(next)
		logs.Write([]byte(time.Now().Format("15:04:05.000") + " TEST: NATS stopped\n"))
		s.Stop()
		waitUntil(time.Now().Add(soakOutage)) // the outage itself
		s.Start()
		logs.Write([]byte(time.Now().Format("15:04:05.000") + " TEST: NATS started\n"))
		restarts++
	}
	readMid()
	waitUntil(began.Add(length))
	end := readVitals(t)
	endChecks := stats.checks.Load()
	stopCheckers()
	pub.stop()
	for i, in := range ins {
		if !testkit.Poll(5*time.Second, func() bool { return mismatch(in, tr, d.keys()) == "" }) {
			m := mismatch(in, tr, d.keys())
			key := strings.Fields(m)[0]
			key = strings.TrimSuffix(key, ":")
			e, err := d.pub.GetKey(context.Background(), authz.APIKey(key).Hash())
			tr.mu.Lock()
			for _, c := range tr.keys[key].changes {
				t.Logf("history: from %s ack %s %+v", c.from.Format("15:04:05.000"), c.ack.Format("15:04:05.000"), c.entry)
			}
			tr.mu.Unlock()
			t.Fatalf("instance %d not converged: %s; bucket has %+v (%v)", i, m, e, err)
		}
	}

	changes, unknown, refused := d.counts()
	checks := stats.checks.Load()
	elapsed := time.Since(began)
	t.Logf("soak %s: %d checks (%.0f/s) on %d goroutines, %d allowed, %d answered 503, %d transport errors, %d violations",
		elapsed.Round(time.Second), checks, float64(checks)/elapsed.Seconds(), soakCheckers, stats.allowed.Load(), stats.unavailable.Load(), stats.errs.Load(), stats.violations.Load())
	t.Logf("publisher steps %d: changes %d (unknown outcome %d, refused %d, publish errors %d), NATS restarts %d, bound %s, max apply lag %s / %s",
		pub.steps.Load(), changes, unknown, refused, pub.errs.Load(), restarts, soakBound,
		ins[0].maxLag(), ins[1].maxLag())
	t.Logf("start -> a third in -> end: goroutines %d -> %d -> %d; heap in use %.1f -> %.1f -> %.1f MiB; RSS %.1f -> %.1f -> %.1f MiB; %.1f allocations per check (whole process: checker, publisher, NATS server included)",
		start.goroutines, mid.goroutines, end.goroutines, mib(start.heapInuse), mib(mid.heapInuse), mib(end.heapInuse),
		float64(start.rssKiB)/1024, float64(mid.rssKiB)/1024, float64(end.rssKiB)/1024,
		float64(end.mallocs-start.mallocs)/float64(max(endChecks-startChecks, 1)))
	for _, ex := range stats.examples {
		t.Errorf("violation: %s", ex)
		key := strings.Fields(ex)[0]
		tr.mu.Lock()
		for _, c := range tr.keys[key].changes {
			t.Logf("  %s history: from %s ack %s %v %s %s", key, c.from.Format("15:04:05.000"), c.ack.Format("15:04:05.000"), c.entry.Presence, c.entry.Record.State, c.entry.Record.AccountID)
		}
		if h := tr.accounts[tr.account[key]]; h != nil {
			for _, c := range h.changes {
				t.Logf("  %s history: from %s ack %s %v %s", tr.account[key], c.from.Format("15:04:05.000"), c.ack.Format("15:04:05.000"), c.entry.Presence, c.entry.Account.Balance)
			}
		}
		tr.mu.Unlock()
	}
	if end.goroutines > start.goroutines+20 {
		t.Errorf("goroutines grew from %d to %d", start.goroutines, end.goroutines)
	}
	if end.heapInuse > 2*start.heapInuse+32<<20 {
		t.Errorf("heap in use grew from %.1f to %.1f MiB", mib(start.heapInuse), mib(end.heapInuse))
	}
	if checks == 0 || changes == 0 {
		t.Errorf("no load: %d checks, %d changes", checks, changes)
	}
}

// soakChecker checks random keys on in (named name in failures) until stop
// closes: a decision must match a state no older than bound; a 503 fails
// closed and is only counted.
func soakChecker(in *instance, name string, tr *truth, d *driver, bound time.Duration, rng *rand.Rand, stats *soakStats, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		k := d.randomKey(rng)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s := time.Now()
		got, err := in.check(ctx, k)
		e := time.Now()
		cancel()
		stats.checks.Add(1)
		switch {
		case err != nil:
			stats.errs.Add(1)
		case got == authz.CodeUnavailable:
			stats.unavailable.Add(1)
		case !tr.acceptable(k, s, e, bound)[got]:
			stats.violation(fmt.Sprintf("%s on %s, sent %s, answered %s: got %v, acceptable %v; history %s",
				k, name, s.Format("15:04:05.000"), e.Format("15:04:05.000"), got, tr.acceptable(k, s, e, bound), tr.describe(k)))
		case got == authz.CodeOK:
			stats.allowed.Add(1)
		}
	}
}

// startCheckers starts n soakCheckers spread over ins, each with a random
// source of its own from seed; the function returned stops them and waits.
func startCheckers(n int, ins []*instance, tr *truth, d *driver, bound time.Duration, seed uint64, stats *soakStats) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			soakChecker(ins[g%len(ins)], fmt.Sprintf("replica %d", g%len(ins)), tr, d, bound, rand.New(rand.NewPCG(uint64(g), seed)), stats, done)
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// waitUntil sleeps until t: the soak's schedule, not a wait for an effect.
func waitUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
