package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/footstep/authz/authz"
)

// hitsAtScale compares, on a server that holds every one of keys in its
// cache, hits spread over all of them (B) with hits on the first 1,000 (A),
// in alternated rounds of the same length. Both build each request as they
// go, so the load generator's work is the same. What B pays beyond A is the
// price of a large cache on the hit path: memory further from the CPU's
// caches, a collector that marks every cached key on each cycle, and allowed
// answers built afresh, since the 4,096 kept ones hold the hot keys'.
func (e *env) hitsAtScale(ctx context.Context, s *server, keys []authz.APIKey) {
	const hot = 1000
	few := keys[:min(hot, len(keys))]
	callers := func(set []authz.APIKey) caller {
		return caller{n: e.o.callers, ok: allowed, req: func(int, int) *authv3.CheckRequest {
			return checkRequest(set[rand.IntN(len(set))])
		}}
	}
	const rounds = 2
	d := max(2*time.Second, e.o.duration/2)
	var a, b []result
	var gcA, gcB, missB float64
	for range rounds {
		gc := s.metric("go_gc_duration_seconds_count")
		a = append(a, drive(ctx, s, d, callers(few)))
		gcA += s.metric("go_gc_duration_seconds_count") - gc
		gc, miss := s.metric("go_gc_duration_seconds_count"), s.metric(`footstep_authz_cache_misses_total{table="key"`)
		b = append(b, drive(ctx, s, d, callers(keys)))
		gcB += s.metric("go_gc_duration_seconds_count") - gc
		missB += s.metric(`footstep_authz_cache_misses_total{table="key"`) - miss
	}
	var calls, errs int
	for _, r := range b {
		calls, errs = calls+r.calls, errs+r.errors
	}
	fmt.Printf("   hits on %d keys (A) vs spread over all %d (B), %d rounds of %s each, medians:\n", len(few), len(keys), rounds, d)
	row := func(name string, f func(result) float64, unit string) {
		ma, mb := median(a, f), median(b, f)
		fmt.Printf("     %-22s %10.1f%s %10.1f%s %7.2fx\n", name, ma, unit, mb, unit, mb/ma)
	}
	row("throughput (checks/s)", result.throughput, "  ")
	row("p50 latency", func(r result) float64 { return us(r.pct(50)) }, "µs")
	row("p99 latency", func(r result) float64 { return us(r.pct(99)) }, "µs")
	row("server CPU per check", func(r result) float64 { return us(r.cpuPerCall()) }, "µs")
	span := (d * rounds).Seconds()
	fmt.Printf("     collections a second   %10.1f   %10.1f\n", gcA/span, gcB/span)
	fmt.Printf("     B: %d checks, %.0f key misses (%.2f%%), %d not allowed\n", calls, missB, 100*missB/float64(max(1, calls)), errs)
}
