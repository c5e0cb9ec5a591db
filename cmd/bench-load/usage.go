package main

import (
	"context"
	"fmt"
	"slices"
)

// usageTracking compares the server CPU per Check of the same build with
// usage tracking on (the default) and off, under the same closed-loop load,
// alternating rounds.
func (e *env) usageTracking(ctx context.Context) error {
	on, _, err := e.startAuthz(ctx)
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
	var cpuOn, cpuOff []float64
	for range e.o.rounds {
		cpuOff = append(cpuOff, us(drive(ctx, off, e.o.duration, load).cpuPerCall()))
		cpuOn = append(cpuOn, us(drive(ctx, on, e.o.duration, load).cpuPerCall()))
		fmt.Printf("   round: CPU per check, tracking off %.2fµs, on %.2fµs\n", cpuOff[len(cpuOff)-1], cpuOn[len(cpuOn)-1])
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	fmt.Printf("== usage tracking: server CPU per check, off %.2fµs, on %.2fµs: %.3fx (target ≤1.02x)\n",
		med(cpuOff), med(cpuOn), med(cpuOn)/med(cpuOff))
	return nil
}
