package main

import (
	"runtime/debug"
)

// memoryOverhead is what the process needs beside the cache: NATS client
// buffers, gRPC and HTTP servers, the watcher's key index, the Go runtime.
const memoryOverhead = 128 << 20

// setMemoryLimit gives the Go runtime a soft memory limit derived from the
// cache budget (twice the budget, for the collector's headroom, plus the
// overhead), unless GOMEMLIMIT is set, which the runtime reads itself. The
// collector then works harder before the heap outgrows a container's limit,
// instead of letting garbage double the footprint. It returns the limit set,
// 0 when it left the runtime's.
func setMemoryLimit(cacheSize int64, getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := 2*cacheSize + memoryOverhead
	debug.SetMemoryLimit(limit)
	return limit
}
