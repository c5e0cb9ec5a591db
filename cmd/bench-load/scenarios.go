package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// settle is how long a change stays in the cache's recent map before the
// janitor moves it into ristretto (read) or drops it (not read): the cache's
// default recent window and one janitor period.
const settle = 5*time.Second + 2*time.Second

func pcts(d []time.Duration) string {
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[int(float64(len(d)-1)*p/100)] }
	return fmt.Sprintf("p50 %.0fµs  p99 %.0fµs  max %.0fµs  (n=%d)", us(at(50)), us(at(99)), us(d[len(d)-1]), len(d))
}

// startWithNewKeys starts footstep-authz, then writes n keys named after
// prefix through the Publisher.
func (e *env) startWithNewKeys(ctx context.Context, prefix string, n int) (*server, []authz.APIKey, error) {
	fa, _, err := e.startAuthz(ctx)
	if err != nil {
		return nil, nil, err
	}
	keys, err := e.putKeys(ctx, prefix, n)
	if err != nil {
		fa.stop()
		return nil, nil, err
	}
	return fa, keys, nil
}

// revocation measures the time from the acknowledgement of a revoke in the
// bucket to the first denial of a key that was hot in the cache.
func (e *env) revocation(ctx context.Context) error {
	fa, keys, err := e.startWithNewKeys(ctx, "rev", e.o.trials)
	if err != nil {
		return err
	}
	defer fa.stop()
	client := fa.clients[0]
	check := func(k authz.APIKey) (*authv3.CheckResponse, error) { return client.Check(ctx, checkRequest(k)) }
	for _, k := range keys { // read each once, so that the janitor keeps it cached
		if r, err := check(k); err != nil || !allowed(r) {
			return fmt.Errorf("new key not allowed: %v %s", err, r.GetStatus().GetMessage())
		}
	}
	time.Sleep(settle)
	var lags []time.Duration
	for _, k := range keys {
		if r, err := check(k); err != nil || !allowed(r) {
			return fmt.Errorf("key not allowed before its revocation: %v %s", err, r.GetStatus().GetMessage())
		}
		if _, err := e.pub.Revoke(ctx, k.Hash()); err != nil {
			return err
		}
		acked := time.Now()
		for {
			r, err := check(k)
			if err != nil {
				return err
			}
			if r.GetStatus().GetMessage() == authz.CodeKeyRevoked.String() {
				break
			}
			if time.Since(acked) > 10*time.Second {
				return fmt.Errorf("revoked key still allowed after 10s")
			}
		}
		lags = append(lags, time.Since(acked))
	}
	fmt.Println("== revocation: KV revoke acknowledged -> first denial of a cached key (target p99 ≤ 2ms)")
	fmt.Println("  ", pcts(lags))
	return nil
}

// coldPath checks keys that are in the bucket but not in the cache, once
// each: a KV Get and a fill.
func (e *env) coldPath(ctx context.Context) error {
	fa, keys, err := e.startWithNewKeys(ctx, "cold", e.o.coldKeys)
	if err != nil {
		return err
	}
	defer fa.stop()
	time.Sleep(settle) // unread changes leave the cache
	client := fa.clients[0]
	hot := checkRequest(e.hot[0])
	var cold, warm []time.Duration
	loads0 := fa.metric("footstep_authz_kv_lookups_total{kind=\"key\"")
	for _, k := range keys {
		t := time.Now()
		r, err := client.Check(ctx, checkRequest(k))
		if err != nil || !allowed(r) {
			return fmt.Errorf("cold key not allowed: %v", err)
		}
		cold = append(cold, time.Since(t))
		t = time.Now()
		if _, err := client.Check(ctx, hot); err != nil {
			return err
		}
		warm = append(warm, time.Since(t))
	}
	loads := fa.metric("footstep_authz_kv_lookups_total{kind=\"key\"") - loads0
	fmt.Println("== cold path: one caller, a key in the bucket but not cached (KV Get + fill); target p99 ≤ 1ms")
	fmt.Println("   cold:", pcts(cold), fmt.Sprintf(" key lookups %.0f", loads))
	fmt.Println("   hot: ", pcts(warm), " (same caller, cached key, for reference)")
	return nil
}

// missStorm compares the valid keys' throughput with and without as many
// callers spraying random well-formed unknown keys, reports the KV lookups
// the spray caused (none once the watcher's index of keys is complete), the
// server CPU per sprayed Check against a hit's, and whether a legitimate key
// created during the spray, at ten times the lookup budget, is ever
// answered 503.
func (e *env) missStorm(ctx context.Context) error {
	var extra []string
	if e.o.stormBudget > 0 {
		extra = []string{"--max-kv-lookups-per-second", strconv.Itoa(e.o.stormBudget)}
	}
	fa, _, err := e.startAuthz(ctx, extra...)
	if err != nil {
		return err
	}
	defer fa.stop()
	half := max(1, e.o.callers/2)
	valid := e.hotCallers(half)
	drive(ctx, fa, time.Second, valid)
	spray := sprayCallers(half)
	lookups := func() float64 { return fa.metric("footstep_authz_kv_lookups_total") }
	var clean, storm, rates, hitCPU, sprayCPU []float64
	for range max(1, e.o.rounds/2) {
		c := drive(ctx, fa, e.o.duration, valid)
		clean = append(clean, c.throughput())
		hitCPU = append(hitCPU, us(c.cpuPerCall()))
		l0 := lookups()
		r := drive(ctx, fa, e.o.duration, valid, spray)
		rates = append(rates, (lookups()-l0)/r.elapsed.Seconds())
		storm = append(storm, float64(r.byGroup[0])/r.elapsed.Seconds())
		sprayCPU = append(sprayCPU, us(drive(ctx, fa, e.o.duration/2, sprayCallers(2*half)).cpuPerCall()))
		fmt.Printf("   round: clean %.0f/s, storm valid %.0f/s, unknown %.0f/s, KV lookups %.0f/s; CPU per check hit %.1fµs, sprayed %.1fµs\n",
			clean[len(clean)-1], storm[len(storm)-1], float64(r.byGroup[1])/r.elapsed.Seconds(), rates[len(rates)-1],
			hitCPU[len(hitCPU)-1], sprayCPU[len(sprayCPU)-1])
	}
	cold, unavailable, err := e.coldDuringSpray(ctx, fa, spray)
	if err != nil {
		return err
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	fmt.Printf("== miss storm: %d valid callers, plus %d spraying unknown keys; lookup budget %d/s (0: server default)\n", half, half, e.o.stormBudget)
	fmt.Printf("   valid throughput clean %.0f/s, in the storm %.0f/s: %.2fx (target ≥0.48x; 0.5x is the fair share of a 1:1 closed loop)\n",
		med(clean), med(storm), med(storm)/med(clean))
	fmt.Printf("   KV lookups during the storm %.0f/s (target 0 once the index is complete); unknown keys answered from the index %.0f\n",
		med(rates), fa.metric("footstep_authz_cache_unknown_total"))
	fmt.Printf("   server CPU per check: hit %.1fµs, sprayed key %.1fµs: %.2fx (target ≤1.10x)\n",
		med(hitCPU), med(sprayCPU), med(sprayCPU)/med(hitCPU))
	fmt.Printf("   legitimate keys created during the spray: %d checked cold, %d answered 503 (target 0)\n", cold, unavailable)
	return nil
}

// sprayCallers is n callers each sending a new random well-formed key.
func sprayCallers(n int) caller {
	var seq atomic.Uint64
	return caller{n: n, req: func(int, int) *authv3.CheckRequest {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return checkRequest(authz.APIKey(fmt.Sprintf("sk_live_spray%x%d", b, seq.Add(1))))
	}}
}

// coldDuringSpray creates keys one by one while callers spray unknown keys,
// and checks each once, cold: with the spray at ten times the lookup
// budget, none may be answered 503.
func (e *env) coldDuringSpray(ctx context.Context, fa *server, spray caller) (checked, unavailable int, err error) {
	done := make(chan result, 1)
	go func() {
		r := drive(ctx, fa, e.o.duration, spray)
		fmt.Printf("   spray while creating keys: %.0f unknown keys/s against a lookup budget of %d/s\n", r.throughput(), e.o.stormBudget)
		done <- r
	}()
	client := fa.clients[0]
	deadline := time.Now().Add(e.o.duration - 200*time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		keys, err := e.putKeys(ctx, fmt.Sprintf("stormcold%d", i), 1)
		if err != nil {
			<-done
			return checked, unavailable, err
		}
		resp, err := client.Check(ctx, checkRequest(keys[0]))
		checked++
		if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() == 503 {
			unavailable++
		}
	}
	<-done
	return checked, unavailable, nil
}

// startupAndMemory writes many keys to the bucket, then measures the time to
// ready, the time until the watcher's key index is complete and the peak
// resident memory until then, the resident bytes per cached key once every
// key was read, and the same with a small --cache-size, to show the budget
// bounds memory. Every key is read once, with no bound on lookups, so that a
// server that starts with an empty cache loads them all.
func (e *env) startupAndMemory(ctx context.Context) error {
	n := e.o.bulkKeys
	if err := e.makeProfileDir(); err != nil {
		return err
	}
	t := time.Now()
	keys, err := e.bulkPut(ctx, n)
	if err != nil {
		return err
	}
	fmt.Printf("== start-up and memory with %d keys in the bucket (written in %s)\n", n, time.Since(t).Round(time.Millisecond))
	// Room for every key: 256 bytes a key are budgeted, 7/8 of it for keys.
	fits := fmt.Sprintf("%dMiB", (int64(n)*256*8/7*11/10)>>20+8)
	for _, size := range []string{fits, e.o.cacheSize} {
		if size == "" {
			continue // -bound-cache-size ""
		}
		fa, ready, err := e.startAuthz(ctx, "--cache-size", size, "--max-kv-lookups-per-second", "0")
		if err != nil {
			return err
		}
		rssReady := fa.rss()
		indexed, peak, err := waitIndexed(ctx, fa, ready)
		if err != nil {
			fa.stop()
			return err
		}
		fmt.Printf("   --cache-size %-8s ready in %s (RSS %.0f MiB), key index complete in %s, peak RSS until then %.0f MiB\n",
			size, ready.Round(time.Millisecond), mib(rssReady), indexed.Round(time.Millisecond), mib(peak))
		if !e.o.sweep {
			fa.stop()
			continue
		}
		rssReady = fa.rss()
		sweep := e.sweep(ctx, fa, keys)
		time.Sleep(settle) // the recent map empties into ristretto
		rssFull := fa.rss()
		evicted := fa.metric("footstep_authz_cache_evictions_total{table=\"key\"")
		fmt.Printf("   --cache-size %-8s RSS before reading %.0f MiB, after reading every key %.0f MiB: %.0f B per key read (target ≤300); evicted %.0f; sweep %.0f checks/s\n",
			size, mib(rssReady), mib(rssFull), float64(rssFull-rssReady)/float64(n), evicted, sweep)
		if size == fits {
			e.hitsAtScale(ctx, fa, keys)
		}
		if e.o.profileDir != "" { // what holds the memory, by allocation site
			file := filepath.Join(e.o.profileDir, "heap-"+size+".pprof")
			if err := fetch("http://"+fa.admin+"/debug/pprof/heap", file); err != nil {
				fa.stop()
				return err
			}
		}
		fa.stop()
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// waitIndexed waits until the server's key index is complete and returns
// when that was, counted from its start, and the peak resident memory seen
// meanwhile (sampled every 20 ms). A server without the metric builds its
// index before it is ready.
func waitIndexed(ctx context.Context, s *server, ready time.Duration) (time.Duration, uint64, error) {
	peak := s.rss()
	for {
		v, ok := s.gauge("footstep_authz_watch_index_complete")
		switch {
		case !ok:
			return ready, peak, nil
		case v == 1:
			return time.Since(s.started), max(peak, s.rss()), nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-s.exited:
			return 0, 0, fmt.Errorf("%s exited while building its key index", s.name)
		case <-time.After(20 * time.Millisecond):
		}
		peak = max(peak, s.rss())
	}
}

// sweep checks every key once, from all callers, and returns the rate.
func (e *env) sweep(ctx context.Context, s *server, keys []authz.APIKey) float64 {
	var next atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	for c := range e.o.callers {
		go func() {
			defer func() { done <- struct{}{} }()
			client := s.clients[c%len(s.clients)]
			for i := next.Add(1) - 1; i < int64(len(keys)); i = next.Add(1) - 1 {
				_, _ = client.Check(ctx, checkRequest(keys[i]))
			}
		}()
	}
	for range e.o.callers {
		<-done
	}
	return float64(len(keys)) / time.Since(start).Seconds()
}

// bulkPut writes n active keys straight to the bucket's stream, many
// publishes in flight, as a console migrating its keys would.
func (e *env) bulkPut(ctx context.Context, n int) ([]authz.APIKey, error) {
	js := e.conn.JetStream()
	keys := make([]authz.APIKey, n)
	for i := range keys {
		keys[i] = benchKey("bulk", i)
		val, err := events.EncodeKey(authz.KeyRecord{KeyID: fmt.Sprintf("key_bulk_%d", i), AccountID: benchAccount, State: authz.StateActive})
		if err != nil {
			return nil, err
		}
		subject := "$KV." + events.DefaultBucket + "." + events.KeyKVKey(keys[i].Hash())
		if _, err := js.PublishAsync(subject, val); err != nil {
			return nil, err
		}
		if i%1000 == 999 { // stay below the client's 4000 unacknowledged publishes
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("bulk put: acknowledgements missing")
	}
	return keys, nil
}
