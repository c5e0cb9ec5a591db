package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/footstep/authz/authz"
)

// checkRequest is a CheckRequest as Envoy sends it for an API call.
func checkRequest(key authz.APIKey) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{"surface": "api"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "6b1c1f2e-0d1c-4a7e-9a51-3f1f7d1e2a10", Method: "POST", Path: "/v1/chat/completions", Host: "api.footstep.example",
			Headers: map[string]string{
				":authority": "api.footstep.example", ":method": "POST", ":path": "/v1/chat/completions", ":scheme": "https",
				"accept": "application/json", "content-type": "application/json", "user-agent": "bench-load/1.0",
				"x-request-id": "6b1c1f2e-0d1c-4a7e-9a51-3f1f7d1e2a10", "x-forwarded-proto": "https",
				authz.HeaderAPIKey: string(key),
			},
		}},
	}}
}

// result is the outcome of one closed-loop run.
type result struct {
	calls   int
	errors  int
	elapsed time.Duration
	cpu     time.Duration // server CPU time used during the run
	lat     []time.Duration
	byGroup []int // calls per caller group
}

func (r result) throughput() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func (r result) cpuPerCall() time.Duration {
	if r.calls == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.calls)
}

// pct returns the p-th percentile latency (p in 0..100).
func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p / 100)
	return r.lat[i]
}

// caller is one group of callers: how many, and the request each call
// sends (by caller and call number).
type caller struct {
	n   int
	req func(c, i int) *authv3.CheckRequest
	ok  func(*authv3.CheckResponse) bool // nil: any answer counts
}

// us returns d in microseconds.
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// drive runs every group of callers against s for d, each caller sending
// its next request as soon as the previous one is answered.
func drive(ctx context.Context, s *server, d time.Duration, groups ...caller) result {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		out      result
		stopping atomic.Bool
	)
	out.byGroup = make([]int, len(groups))
	cpu0, start := s.cpu(), time.Now()
	c := 0
	for g, grp := range groups {
		for range grp.n {
			wg.Add(1)
			go func(c, g int, grp caller) {
				defer wg.Done()
				client := s.clients[c%len(s.clients)]
				lat := make([]time.Duration, 0, 1<<14)
				var errs int
				for i := 0; !stopping.Load(); i++ {
					t := time.Now()
					resp, err := client.Check(ctx, grp.req(c, i))
					lat = append(lat, time.Since(t))
					if err != nil || (grp.ok != nil && !grp.ok(resp)) {
						errs++
					}
				}
				mu.Lock()
				out.lat = append(out.lat, lat...)
				out.calls += len(lat)
				out.byGroup[g] += len(lat)
				out.errors += errs
				mu.Unlock()
			}(c, g, grp)
			c++
		}
	}
	time.Sleep(d)
	stopping.Store(true)
	out.elapsed = time.Since(start)
	wg.Wait()
	out.cpu = s.cpu() - cpu0
	slices.Sort(out.lat)
	return out
}

// hotCallers is n callers cycling through the hot keys.
func (e *env) hotCallers(n int) caller {
	reqs := make([]*authv3.CheckRequest, len(e.hot))
	for i, k := range e.hot {
		reqs[i] = checkRequest(k)
	}
	return caller{n: n, req: func(c, i int) *authv3.CheckRequest { return reqs[(c*7919+i)%len(reqs)] }, ok: allowed}
}

func allowed(r *authv3.CheckResponse) bool { return r.GetOkResponse() != nil }

// loadComparison alternates the floor (A) and footstep-authz (B) under the
// same load and prints medians and ratios.
func (e *env) loadComparison(ctx context.Context) error {
	floor, err := e.startFloor(ctx)
	if err != nil {
		return err
	}
	defer floor.stop()
	if err := e.makeProfileDir(); err != nil {
		return err
	}
	fa, _, err := e.startAuthz(ctx)
	if err != nil {
		return err
	}
	defer fa.stop()
	load := e.hotCallers(e.o.callers)
	floorLoad := load
	floorLoad.ok = nil
	// Warm up both: connections, the servers' heaps, the cache.
	drive(ctx, floor, time.Second, floorLoad)
	if w := drive(ctx, fa, 2*time.Second, load); w.errors > 0 {
		return fmt.Errorf("footstep-authz warm-up: %d of %d checks not allowed", w.errors, w.calls)
	}
	var a, b []result
	for i := range e.o.rounds {
		a = append(a, drive(ctx, floor, e.o.duration, floorLoad))
		var prof *profiling
		if i == e.o.rounds-1 && e.o.profileDir != "" {
			prof = startProfiling(fa, e.o.profileDir, e.o.duration)
		}
		b = append(b, drive(ctx, fa, e.o.duration, load))
		if err := prof.wait(); err != nil {
			return err
		}
	}
	if bad := b[len(b)-1].errors; bad > 0 {
		return fmt.Errorf("footstep-authz: %d checks not allowed", bad)
	}
	fmt.Println("== load: closed loop, floor (no-op ext_authz) vs footstep-authz, medians of the rounds")
	fmt.Printf("%-22s %14s %14s %8s %8s\n", "", "floor", "footstep-authz", "ratio", "target")
	row := func(name string, f func(result) float64, unit string, target string) {
		ma, mb := median(a, f), median(b, f)
		fmt.Printf("%-22s %12.1f%s %12.1f%s %7.2fx %8s\n", name, ma, unit, mb, unit, mb/ma, target)
	}
	row("throughput (checks/s)", result.throughput, "  ", "≥0.90x")
	row("p50 latency", func(r result) float64 { return us(r.pct(50)) }, "µs", "")
	row("p99 latency", func(r result) float64 { return us(r.pct(99)) }, "µs", "≤1.10x")
	row("p99.9 latency", func(r result) float64 { return us(r.pct(99.9)) }, "µs", "")
	row("server CPU per check", func(r result) float64 { return us(r.cpuPerCall()) }, "µs", "≤1.05x")
	for i := range a {
		fmt.Printf("  round %d: floor %.0f/s cpu %.1fµs p99 %s | authz %.0f/s cpu %.1fµs p99 %s\n", i+1,
			a[i].throughput(), us(a[i].cpuPerCall()), a[i].pct(99).Round(time.Microsecond),
			b[i].throughput(), us(b[i].cpuPerCall()), b[i].pct(99).Round(time.Microsecond))
	}
	return nil
}

func median(runs []result, f func(result) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return middle(v)
}

// profiling is a CPU profile of a server being taken, and the allocation
// profile taken after it.
type profiling struct {
	done chan error
}

// startProfiling asks s for a CPU profile lasting most of d, then for its
// allocation profile, and meanwhile for a 3-second execution trace (go tool
// trace -pprof=sched shows what kept calls waiting for the core), and writes
// them into dir.
func startProfiling(s *server, dir string, d time.Duration) *profiling {
	p := &profiling{done: make(chan error, 1)}
	go func() {
		traced := make(chan error, 1)
		go func() {
			traced <- fetch("http://"+s.admin+"/debug/pprof/trace?seconds=3", filepath.Join(dir, "trace.out"))
		}()
		secs := max(1, int((d-time.Second)/time.Second))
		err := fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.admin, secs), filepath.Join(dir, "cpu.pprof"))
		if err == nil {
			err = fetch("http://"+s.admin+"/debug/pprof/allocs", filepath.Join(dir, "allocs.pprof"))
		}
		p.done <- errors.Join(err, <-traced)
	}()
	return p
}

func (p *profiling) wait() error {
	if p == nil {
		return nil
	}
	return <-p.done
}

// makeProfileDir creates the -profile directory, when one is asked for.
func (e *env) makeProfileDir() error {
	if e.o.profileDir == "" {
		return nil
	}
	if err := os.MkdirAll(e.o.profileDir, 0o755); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// getProfile asks a server's pprof endpoint for a profile; the caller
// closes the body.
func getProfile(url string) (io.ReadCloser, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("profile: %s answered %s", url, resp.Status)
	}
	return resp.Body, nil
}

// fetch writes what url answers into file.
func fetch(url, file string) error {
	body, err := getProfile(url)
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("profile: %w", err)
	}
	return f.Close()
}
