package main

import (
	"context"
	"fmt"
	"slices"
)

// usageTracking compares the server CPU per Check of the same build with
// usage tracking on (the default) and off, under the same closed-loop load.
// Each round runs both, in an order that alternates from one round to the
// next so that a drift of the machine favours neither, and yields one on/off
// ratio; the result is the median of those paired ratios, with their range.
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
	rounds := max(e.o.rounds, usageMinRounds)
	var cpuOn, cpuOff, ratios []float64
	for r := range rounds {
		var offUs, onUs float64
		if r%2 == 0 {
			offUs = us(drive(ctx, off, e.o.duration, load).cpuPerCall())
			onUs = us(drive(ctx, on, e.o.duration, load).cpuPerCall())
		} else {
			onUs = us(drive(ctx, on, e.o.duration, load).cpuPerCall())
			offUs = us(drive(ctx, off, e.o.duration, load).cpuPerCall())
		}
		cpuOn, cpuOff, ratios = append(cpuOn, onUs), append(cpuOff, offUs), append(ratios, onUs/offUs)
		fmt.Printf("   round %d: CPU per check, tracking off %.2fµs, on %.2fµs: %.3fx\n", r+1, offUs, onUs, onUs/offUs)
	}
	fmt.Printf("== usage tracking: server CPU per check, off %.2fµs, on %.2fµs (medians); on/off %.3fx, median of %d paired rounds (%.3f to %.3f; target ≤1.02x)\n",
		middle(cpuOff), middle(cpuOn), middle(ratios), rounds, slices.Min(ratios), slices.Max(ratios))
	return nil
}

// usageMinRounds is the fewest paired rounds the usage comparison runs: a
// 2% effect needs more than the four rounds of the load comparison to stand
// out of this machine's noise.
const usageMinRounds = 6

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
