package server

import (
	"log/slog"
	"runtime/debug"
)

// DefaultGCPercent is the collector's target the command sets unless GOGC
// is set: the heap may grow by 70% of what it holds before a collection,
// where the runtime's default is 100%.
//
// The cache's admission counters and filter are arrays without pointers,
// sized to --cache-size (36 MB at the default 256 MiB): they cost the
// collector nothing to mark, but count in the heap it holds, so with the
// default target a collection comes only after twice as much garbage, each
// one as long as before. Under load on one core (GOMAXPROCS=1, as in a pod
// with a CPU limit of 1) those rare collections' mark phases hold the core
// for 10 ms every 200 ms, and the requests they delay are the slowest
// percent. At 70% collections come more often; bench-load's p99 against the
// no-op floor was 1.12 to 1.16x at 100% and 0.98 to 1.04x at 70%, CPU per
// Check 1.01x and 0.96 to 1.05x (docs/performance.md, Round 6). It also
// keeps a full cache's process smaller: the heap peaks at 1.7 times what
// it holds instead of twice.
const DefaultGCPercent = 70

// memoryOverhead is what the process needs beside the cache and the key
// index: NATS client buffers, the gRPC and HTTP servers, the usage table, the
// Go runtime.
const memoryOverhead = 128 << 20

// memoryLimit keeps the Go runtime's soft memory limit at twice the cache
// budget (the collector's headroom over a full cache), plus the key index as
// it grows, plus memoryOverhead. The index holds every record of the bucket,
// whatever the cache size: with a limit that ignored it, a small cache in
// front of millions of keys would leave the collector running without end
// once the index outgrew the overhead.
type memoryLimit struct {
	base int64 // 2*CacheSize + memoryOverhead
	set  int64 // the limit last given to the runtime
	log  *slog.Logger
}

func newMemoryLimit(cacheSize int64, log *slog.Logger) *memoryLimit {
	m := &memoryLimit{base: 2*cacheSize + memoryOverhead, log: log}
	m.follow(0)
	return m
}

// setGCPercent gives the runtime the collector's target of Config.GCPercent.
func setGCPercent(percent int, log *slog.Logger) {
	if percent <= 0 {
		return
	}
	debug.SetGCPercent(percent)
	log.Debug("collector target set", "gogc", percent)
}

// follow raises the limit to cover an index of indexBytes. It never lowers
// it: a Go map keeps its memory when it is cleared, as the index is for a
// resync.
func (m *memoryLimit) follow(indexBytes int64) {
	want := m.base + indexBytes
	if want <= m.set {
		return
	}
	m.set = want
	debug.SetMemoryLimit(want)
	m.log.Debug("memory limit derived from --cache-size and the key index", "gomemlimit_bytes", want, "index_bytes", indexBytes)
}
