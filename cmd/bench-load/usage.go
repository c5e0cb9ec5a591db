package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// usageTracking compares the server CPU per Check of the same build with
// usage tracking on (the default) and off, under the same closed-loop load.
// Both servers are driven at once, each by half the callers, for a short
// slice, and each slice yields one on/off ratio; the result is the median
// of those ratios, with their quartiles. Driven at once, on the same core,
// the two servers share every burst of the host's noise, which in slices
// taken one after the other lands on one side only: on this shared machine
// that spread the ratios' quartiles over ±5%. The slices are spread over
// several pairs of freshly started servers, started in turn in one order
// and the other: a control run with tracking off on both (-usage-control)
// showed the server started first costing about 1% more for as long as
// both ran.
func (e *env) usageTracking(ctx context.Context) error {
	// Summaries are published once a day, so that no publication falls in a
	// round: this compares the hot path. A publication's own cost is
	// measured by BenchmarkUsageFlush in package events.
	tracking := "--usage-interval=24h"
	if e.o.usageControl {
		tracking = "--usage-tracking=false"
		fmt.Println("   control run: usage tracking is off on both servers")
	}
	if err := e.makeProfileDir(); err != nil {
		return err
	}
	load := e.hotCallers(e.o.callers)
	half := e.hotCallers(max(e.o.callers/2, 1))
	groups := max(e.o.rounds, 2)
	pairs, slice := max(24*e.o.rounds, usageMinPairs)/groups, max(e.o.duration/16, 500*time.Millisecond)
	var cpuOn, cpuOff, ratios []float64
	var on, off *server
	for g := range groups {
		if on != nil {
			on.stop()
			off.stop()
		}
		var err error
		if on, off, err = e.startUsagePair(ctx, tracking, g%2 == 1); err != nil {
			return err
		}
		driveBoth(ctx, on, off, 2*e.o.duration/3, half)
		// Many short slices rather than a few long rounds: a burst that
		// still favours one side skews one slice of many, which the median
		// ignores.
		for range pairs {
			onR, offR := driveBoth(ctx, on, off, slice, half)
			onUs, offUs := us(onR.cpuPerCall()), us(offR.cpuPerCall())
			cpuOn, cpuOff, ratios = append(cpuOn, onUs), append(cpuOff, offUs), append(ratios, onUs/offUs)
		}
	}
	defer on.stop()
	defer off.stop()
	fmt.Printf("== usage tracking: server CPU per check, off %.2fµs, on %.2fµs (medians); on/off %.3fx, median of %d slices of %s, both servers driven at once, over %d pairs of servers (quartiles %.3f to %.3f; target ≤1.02x)\n",
		middle(cpuOff), middle(cpuOn), middle(ratios), len(ratios), slice, groups, quantile(ratios, 0.25), quantile(ratios, 0.75))
	return e.recorderShare(ctx, on, off, load) // on the last pair, still running
}

// driveBoth drives a and b at once for d, each with load.
func driveBoth(ctx context.Context, a, b *server, d time.Duration, load caller) (ra, rb result) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		rb = drive(ctx, b, d, load)
	}()
	ra = drive(ctx, a, d, load)
	<-done
	return ra, rb
}

// startUsagePair starts a server with the tracking flag and one with tracking
// off, the second first when offFirst is set.
func (e *env) startUsagePair(ctx context.Context, tracking string, offFirst bool) (on, off *server, err error) {
	flags := [2][]string{{tracking, "--pprof"}, {"--usage-tracking=false", "--pprof"}}
	order := []int{0, 1}
	if offFirst {
		order = []int{1, 0}
	}
	var s [2]*server
	for _, i := range order {
		if s[i], _, err = e.startAuthz(ctx, flags[i]...); err != nil {
			for _, started := range s {
				if started != nil {
					started.stop()
				}
			}
			return nil, nil, err
		}
	}
	return s[0], s[1], nil
}

// quantile returns the q quantile of v (nearest rank); v is sorted in place.
func quantile(v []float64, q float64) float64 {
	slices.Sort(v)
	return v[int(q*float64(len(v)-1))]
}

// recorderShare prints the share of the tracking server's CPU spent in
// UsageRecorder.Record, from a CPU profile of the server under the same
// load. It is a second measure of the same cost: unlike the on/off ratio it
// does not see what recording does to the rest of the server (its cache
// lines), but its sampling error is a tenth of a percent where the ratio's
// is a percent or two. It runs after the paired slices, so that profiling
// skews none of them. With -profile, both servers' profiles are written.
func (e *env) recorderShare(ctx context.Context, on, off *server, load caller) error {
	// At 100 samples a second, a cost near 1% gets one sample a second: 30
	// seconds put it within about ±20% of itself.
	d := max(4*e.o.duration, 12*time.Second)
	p, err := profileUnderLoad(ctx, on, d, load)
	if err != nil {
		return err
	}
	in, total, err := cpuIn(p, "/events.(*UsageRecorder).Record")
	if err != nil {
		return err
	}
	fmt.Printf("   profile of the tracking server under the same load: UsageRecorder.Record %.2f%% of its CPU (%s of %s sampled; target ≤2%%)\n",
		100*in.Seconds()/total.Seconds(), in.Round(time.Millisecond), total.Round(time.Millisecond))
	if e.o.profileDir == "" {
		return nil
	}
	// For a function by function comparison:
	// go tool pprof -top -diff_base usage-off.pprof BINARY usage-on.pprof
	q, err := profileUnderLoad(ctx, off, d, load)
	if err != nil {
		return err
	}
	return errors.Join(writeProfile(p, filepath.Join(e.o.profileDir, "usage-on.pprof")),
		writeProfile(q, filepath.Join(e.o.profileDir, "usage-off.pprof")))
}

// profileUnderLoad drives load against s for d and returns a CPU profile of
// s taken meanwhile.
func profileUnderLoad(ctx context.Context, s *server, d time.Duration, load caller) (*profile.Profile, error) {
	type answer struct {
		p   *profile.Profile
		err error
	}
	got := make(chan answer, 1)
	go func() {
		p, err := cpuProfile(s, d-time.Second)
		got <- answer{p, err}
	}()
	drive(ctx, s, d, load)
	a := <-got
	return a.p, a.err
}

func writeProfile(p *profile.Profile, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("profile: %w", err)
	}
	return f.Close()
}

// cpuProfile takes a CPU profile of s lasting d (whole seconds, at least
// one).
func cpuProfile(s *server, d time.Duration) (*profile.Profile, error) {
	body, err := getProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.admin, max(1, int(d/time.Second))))
	if err != nil {
		return nil, err
	}
	defer body.Close()
	p, err := profile.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return p, nil
}

// cpuIn returns the CPU time of the samples of p with a frame in a function
// whose name ends with fn, and the CPU time of all samples.
func cpuIn(p *profile.Profile, fn string) (in, total time.Duration, err error) {
	v := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" })
	if v < 0 {
		return 0, 0, errors.New("profile: no cpu samples")
	}
	for _, s := range p.Sample {
		ns := time.Duration(s.Value[v])
		total += ns
		if slices.ContainsFunc(s.Location, func(l *profile.Location) bool {
			return slices.ContainsFunc(l.Line, func(ln profile.Line) bool { return strings.HasSuffix(ln.Function.Name, fn) })
		}) {
			in += ns
		}
	}
	if total == 0 {
		return 0, 0, errors.New("profile: no cpu sampled")
	}
	return in, total, nil
}

// usageMinPairs is the fewest paired slices the usage comparison runs. On
// a quiet 2-core machine one pair's ratio spreads by about 5% (standard
// deviation), so the median of n pairs is known to about 6%/√n: 96 pairs,
// the default run, put it within ±0.7%, fine enough to judge a 2% target.
const usageMinPairs = 24

// middle returns the median of v (the mean of the two middle values for an
// even count); v is sorted in place.
func middle(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
