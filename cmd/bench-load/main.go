// Command bench-load measures footstep-authz against the floor of what a
// gRPC ext_authz server can be: a no-op server that answers OK with one
// header. It starts both as subprocesses in the same run (pinned to another
// core than the load when taskset is there), drives each in turn with the
// same closed-loop gRPC load, alternating them over several rounds, and
// prints medians and ratios: throughput, latency percentiles and server CPU
// time per Check. It then measures revocation propagation, the cold path, a
// miss storm, start-up with many keys in the bucket and memory per key.
//
//	bench-load [-quick] [-authz path/to/footstep-authz] [-only load,revocation,...]
//
// Without -authz it builds footstep-authz with the go command. NATS runs in
// this process (embedded), so that the servers' resident memory is their
// own. "bench-load serve-floor -addr host:port" is the floor server itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench-load:", err)
		os.Exit(1)
	}
}

// options are the knobs of one run.
type options struct {
	authzBin  string
	quick     bool
	rounds    int
	duration  time.Duration
	conns     int
	callers   int
	hotKeys   int
	trials    int
	coldKeys  int
	bulkKeys  int
	cacheSize string
	// authzEnv is more of the footstep-authz servers' environment, as
	// KEY=VALUE words (GOGC, GODEBUG, GOMEMLIMIT), for experiments; the load
	// generator and NATS keep theirs.
	authzEnv []string
	// authzArgs are more flags of every footstep-authz server started.
	authzArgs []string
	// sweep reads every bulk key after start-up, for the memory per key.
	sweep bool
	// stormBudget is the --max-kv-lookups-per-second of the miss storm's
	// server, to show that the budget bounds the lookups.
	stormBudget int
	// profileDir, when set, receives the footstep-authz server's CPU and
	// allocation profiles and execution trace from the last load round, and
	// its heap profile after the start-up sweep; the servers then run with
	// --pprof.
	profileDir string
	// usageControl runs the usage comparison with tracking off on both
	// servers (an A/A run), to show the method's own bias.
	usageControl bool
	// failoverTrials is how many revocations each node-kill case times.
	failoverTrials int
	only           map[string]bool
}

func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench-load", flag.ContinueOnError)
	fs.StringVar(&o.authzBin, "authz", "", "footstep-authz binary; empty builds it with the go command")
	fs.BoolVar(&o.quick, "quick", false, "fewer rounds, shorter runs and 100k instead of 1M bulk keys (about 2 minutes)")
	fs.IntVar(&o.rounds, "rounds", 0, "A B rounds of the load comparison (default 4, quick 2)")
	fs.DurationVar(&o.duration, "duration", 0, "length of one load run (default 8s, quick 3s)")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections of the load")
	fs.IntVar(&o.callers, "callers", 32, "concurrent callers of the load (closed loop)")
	fs.IntVar(&o.hotKeys, "hot-keys", 1000, "valid keys the load cycles through")
	fs.IntVar(&o.trials, "trials", 0, "revocation trials (default 300, quick 100)")
	fs.IntVar(&o.coldKeys, "cold-keys", 500, "uncached keys checked once each for the cold path")
	fs.IntVar(&o.bulkKeys, "bulk-keys", 0, "keys in the bucket for start-up and memory (default 1000000, quick 100000)")
	fs.StringVar(&o.cacheSize, "bound-cache-size", "32MiB", "--cache-size of the run that shows the cache bounds memory (\"\": no such run)")
	memLimit := fs.String("authz-gomemlimit", "", "GOMEMLIMIT of the footstep-authz servers only (\"\": they derive their own); short for -authz-env GOMEMLIMIT=...")
	moreArgs := fs.String("authz-args", "", "more flags of every footstep-authz server, space-separated (--usage-tracking=false)")
	env := fs.String("authz-env", "", "more environment of the footstep-authz servers only, as space-separated KEY=VALUE words (GOGC=200 GODEBUG=gctrace=1)")
	fs.BoolVar(&o.sweep, "startup-sweep", true, "after start-up, read every bulk key to measure memory per key (false: start-up times and memory only)")
	fs.BoolVar(&o.usageControl, "usage-control", false, "usage comparison with tracking off on both servers: the method's own bias (A/A)")
	fs.StringVar(&o.profileDir, "profile", "", "directory to write cpu.pprof, allocs.pprof and trace.out of the server, taken during the last load round, and heap-SIZE.pprof after the start-up sweep (go tool pprof and go tool trace read them)")
	fs.IntVar(&o.stormBudget, "storm-budget", 1000, "--max-kv-lookups-per-second of the miss storm's server (0: the server's default)")
	fs.IntVar(&o.failoverTrials, "failover-trials", 0, "revocations timed per node-kill case of a three-node cluster (default 20, quick 5)")
	only := fs.String("only", "", "comma-separated subset of load,revocation,cold,storm,startup,usage,failover")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, kv := range strings.Fields(*env) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("-authz-env: %q is not KEY=VALUE", kv)
		}
		o.authzEnv = append(o.authzEnv, kv)
	}
	if *memLimit != "" {
		o.authzEnv = append(o.authzEnv, "GOMEMLIMIT="+*memLimit)
	}
	o.authzArgs = strings.Fields(*moreArgs)
	def := func(v *int, full, quick int) {
		if *v == 0 {
			*v = map[bool]int{false: full, true: quick}[o.quick]
		}
	}
	def(&o.rounds, 4, 2)
	def(&o.trials, 300, 100)
	def(&o.bulkKeys, 1000000, 100000)
	def(&o.failoverTrials, 20, 5)
	if o.duration == 0 {
		o.duration = map[bool]time.Duration{false: 8 * time.Second, true: 3 * time.Second}[o.quick]
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.only[s] = true
		}
	}
	return o, nil
}

func (o *options) want(phase string) bool { return len(o.only) == 0 || o.only[phase] }

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "serve-floor" {
		return serveFloor(ctx, args[1:])
	}
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	env, err := newEnv(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()
	env.printMachine()
	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"load", env.loadComparison},
		{"revocation", env.revocation},
		{"cold", env.coldPath},
		{"storm", env.missStorm},
		{"startup", env.startupAndMemory},
		{"usage", env.usageTracking},
		{"failover", env.failover},
	}
	for _, p := range phases {
		if !o.want(p.name) {
			continue
		}
		start := time.Now()
		if err := p.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		fmt.Printf("  (%s took %s)\n\n", p.name, time.Since(start).Round(time.Second))
	}
	return nil
}
