package server

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUsageTracking measures the CPU per Check of a hot key with usage
// tracking off and on, in the same run: two servers, one of each, are asked
// in alternating blocks of usageBenchBlock checks, and the process CPU time
// of each block is charged to its server. "engine" calls the engine alone
// (the hot path the recorder is added to); "grpc" makes real gRPC calls,
// client and server in this process.
//
//	go test -run '^$' -bench BenchmarkUsageTracking -benchtime 200x -count 5 ./internal/server
//
// b.N counts pairs of blocks. It reports cpu-ns per check off and on, and
// on/off.
func BenchmarkUsageTracking(b *testing.B) {
	const key = "sk_live_bench_usage_tracking_000000000"
	off := startServer(b, func(c *Config) { c.UsageTracking = false })
	on := startServer(b, func(c *Config) { c.UsageTracking = true })
	for _, s := range []*testServer{off, on} {
		s.put(b, key, "key_bench", "acct_bench", "100", authz.StateActive)
		testkit.Eventually(b, 5*time.Second, "key allowed", func() bool { st, _ := decisionOf(b, s, key); return st == 200 })
	}
	for _, path := range []string{"engine", "grpc"} {
		b.Run(path, func(b *testing.B) {
			checks := [2]func(){benchCheck(b, off, path, key), benchCheck(b, on, path, key)}
			var spent [2]time.Duration
			for _, check := range checks {
				for range usageBenchBlock { // warm: cached, recorded
					check()
				}
			}
			for b.Loop() {
				for i, check := range checks {
					start := cpuTime(b)
					for range usageBenchBlock {
						check()
					}
					spent[i] += cpuTime(b) - start
				}
			}
			perCheck := func(d time.Duration) float64 { return float64(d) / float64(b.N*usageBenchBlock) }
			b.ReportMetric(perCheck(spent[0]), "off-cpu-ns/check")
			b.ReportMetric(perCheck(spent[1]), "on-cpu-ns/check")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "on/off")
		})
	}
}

// usageBenchBlock is how many checks one block of BenchmarkUsageTracking makes.
const usageBenchBlock = 500

func benchCheck(b *testing.B, s *testServer, path, key string) func() {
	ctx := context.Background()
	if path == "engine" {
		req := authz.Request{APIKeys: []string{key}, Path: "/v1/things"}
		return func() {
			if r := s.app.engine.Authorize(ctx, req); r.Code != authz.CodeOK {
				b.Fatalf("Authorize = %v; want ok", r.Code)
			}
		}
	}
	req := testkit.KeyCheck(key)
	return func() {
		if _, err := s.client.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
