//go:build !race

package reliability

// raceSlowdown scales the time bounds of these tests under the race detector.
const raceSlowdown = 1
