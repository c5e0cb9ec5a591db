package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// usageTracking compares the server CPU per Check of the same build with
// usage tracking on (the default) and off, under the same closed-loop load.
// Each pair runs both for a short slice, in an order that alternates from
// one pair to the next so that a drift of the machine favours neither, and
// yields one on/off ratio; the result is the median of those ratios, with
// their quartiles.
func (e *env) usageTracking(ctx context.Context) error {
	// Summaries are published once a day, so that no publication falls in a
	// round: this compares the hot path. A publication's own cost is
	// measured by BenchmarkUsageFlush in package events.
	on, _, err := e.startAuthz(ctx, "--usage-interval=24h")
	if err != nil {
		return err
	}
	defer on.stop()
	off, _, err := e.startAuthz(ctx, "--usage-tracking=false")
	if err != nil {
		return err
	}
	defer off.stop()
	load := e.hotCallers(e.o.callers)
	drive(ctx, on, 2*e.o.duration/3, load)
	drive(ctx, off, 2*e.o.duration/3, load)
	// Many short paired slices rather than a few long rounds: a burst of
	// another process on this shared machine then skews one slice of many,
	// which the median ignores.
	pairs, slice := max(6*e.o.rounds, usageMinPairs), max(e.o.duration/8, 500*time.Millisecond)
	var cpuOn, cpuOff, ratios []float64
	for r := range pairs {
		var offUs, onUs float64
		if r%2 == 0 {
			offUs = us(drive(ctx, off, slice, load).cpuPerCall())
			onUs = us(drive(ctx, on, slice, load).cpuPerCall())
		} else {
			onUs = us(drive(ctx, on, slice, load).cpuPerCall())
			offUs = us(drive(ctx, off, slice, load).cpuPerCall())
		}
		cpuOn, cpuOff, ratios = append(cpuOn, onUs), append(cpuOff, offUs), append(ratios, onUs/offUs)
	}
	slices.Sort(ratios)
	q := func(p float64) float64 { return ratios[int(p*float64(len(ratios)-1))] }
	fmt.Printf("== usage tracking: server CPU per check, off %.2fµs, on %.2fµs (medians); on/off %.3fx, median of %d paired slices of %s (quartiles %.3f to %.3f; target ≤1.02x)\n",
		middle(cpuOff), middle(cpuOn), middle(ratios), pairs, slice, q(0.25), q(0.75))
	return nil
}

// usageMinPairs is the fewest paired slices the usage comparison runs: a 2%
// effect needs many to stand out of this machine's noise.
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
