package server

import (
	"log/slog"
	"runtime/debug"
)

// DefaultGCPercent is the collector's target the command sets when GOGC is
// not set: a collection when the heap has grown by half, not doubled. With
// Envoy's requests read without their other headers (envoy/decode.go), a
// Check allocates little, and collecting twice as often cost no measurable
// CPU per Check under load, while it spread the collector's work into
// shorter, more frequent marks: p99 0.99 and 1.01x the floor's against
// 1.08 and 1.12x at the runtime's 100, and a resident size after reading a
// million keys 1.5 times the live heap instead of twice (426 against 618 B
// a key). With a million keys cached, where each collection marks them
// all, CPU per Check was 8 to 10% higher (docs/performance.md, Round 7).
const DefaultGCPercent = 50

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
