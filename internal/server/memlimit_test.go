package server

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// TestMemoryLimitFollowsTheIndex: a server that derives the memory limit
// starts at twice its cache budget plus the overhead, and raises the limit by
// what its key index holds once it has read the bucket's history; it never
// lowers it. The limit is the process's, so no other test of this package
// derives one.
func TestMemoryLimitFollowsTheIndex(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	n := testkit.StartNATS(t)
	p, _ := bucketWriter(t, n.URL())
	const keys = 200
	for i := range keys {
		putKey(t, p, fmt.Sprintf("sk_live_memlimit_%d", i), "key_memlimit", "acct_memlimit", authz.StateActive)
	}

	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	const cacheSize = 8 << 20
	base := int64(2*cacheSize + memoryOverhead)
	s := startServer(t, withNATS(n.URL()), withBuildHeld(gate), func(c *Config) {
		c.CacheSize, c.DeriveMemoryLimit = cacheSize, true
	})
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("memory limit %d at ready, the index held; want %d", got, base)
	}
	release()
	testkit.Eventually(t, 10*time.Second, "limit raised by the complete index", func() bool {
		n, complete := s.app.nats.watcher.IndexedKeys()
		index := s.app.nats.watcher.IndexBytes()
		return complete && n == keys && index >= keys*12 && debug.SetMemoryLimit(-1) == base+index
	})
}

// TestMemoryLimitNeverLowers: a cleared index keeps its memory, and the
// limit keeps covering it.
func TestMemoryLimitNeverLowers(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	m := newMemoryLimit(8<<20, slog.New(slog.DiscardHandler))
	base := int64(2*8<<20 + memoryOverhead)
	for _, tt := range []struct{ index, want int64 }{{0, base}, {1 << 20, base + 1<<20}, {0, base + 1<<20}, {2 << 20, base + 2<<20}} {
		m.follow(tt.index)
		if got := debug.SetMemoryLimit(-1); got != tt.want {
			t.Errorf("after follow(%d): limit %d; want %d", tt.index, got, tt.want)
		}
	}
}

// TestGCPercent: a server told to set the collector's target sets it to
// DefaultGCPercent, as the runtime reports it; one not told leaves it.
func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	startServer(t)
	if got := gogc(); got != 100 {
		t.Errorf("GOGC %d after a server not told to set it; want 100, as it was", got)
	}
	startServer(t, func(c *Config) { c.SetGCPercent = true })
	if got := gogc(); got != DefaultGCPercent {
		t.Errorf("GOGC %d; want %d", got, DefaultGCPercent)
	}
}
