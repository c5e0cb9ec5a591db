package cache

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// benchLoader answers every key as active, with ids of realistic length, and
// never blocks.
type benchLoader struct{}

func (benchLoader) LoadKey(_ context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	n := binary.BigEndian.Uint64(h[:8])
	return authz.KeyEntry{Revision: n%1000 + 1, Presence: authz.Present, Record: authz.KeyRecord{
		KeyID: "key_" + strconv.FormatUint(n%1e12, 36), AccountID: "acct_" + strconv.FormatUint(n%1e6, 36), State: authz.StateActive,
	}}, nil
}

func (benchLoader) LoadAccount(context.Context, string) (authz.AccountEntry, error) {
	b, _ := authz.ParseBalance("12.50")
	return authz.AccountEntry{Revision: 1, Presence: authz.Present, Account: authz.Account{Balance: b}}, nil
}

func newBenchStore(b *testing.B, maxBytes int64) *Store {
	b.Helper()
	s, err := New(Config{Loader: benchLoader{}, MaxBytes: maxBytes})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	caughtUp(s)
	return s
}

// caughtUp moves the watch's position past every revision benchLoader
// returns, as in a running server whose watch has delivered the bucket:
// loads are then not ahead of the watch.
func caughtUp(s *Store) {
	s.ApplyKey(authz.KeyHash{}, authz.KeyEntry{Revision: 1001, Presence: authz.Absent})
	s.ApplyAccount("acct_watch_position", authz.AccountEntry{Revision: 1001, Presence: authz.Absent})
}

func benchHash(i int) authz.KeyHash {
	return authz.APIKey(fmt.Sprintf("sk_live_bench_%032d", i)).Hash()
}

// benchHashes returns the first n bench key hashes.
func benchHashes(n int) []authz.KeyHash {
	hashes := make([]authz.KeyHash, n)
	for i := range hashes {
		hashes[i] = benchHash(i)
	}
	return hashes
}

// BenchmarkStoreHit is one key lookup answered from ristretto.
func BenchmarkStoreHit(b *testing.B) {
	s := newBenchStore(b, 8<<20)
	ctx := context.Background()
	h := benchHash(1)
	warm(b, s, h)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Key(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreHitParallel is the same from every P, over 1024 hot keys.
func BenchmarkStoreHitParallel(b *testing.B) {
	s := newBenchStore(b, 8<<20)
	ctx := context.Background()
	hashes := benchHashes(1024)
	for _, h := range hashes {
		warm(b, s, h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Key(ctx, hashes[i%len(hashes)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkStoreMissFill is a miss filled from an instant Loader: the cost
// of the fill machinery itself (a load goroutine, the shard lock, the Set).
func BenchmarkStoreMissFill(b *testing.B) {
	s := newBenchStore(b, 64<<20)
	ctx := context.Background()
	hashes := benchHashes(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Key(ctx, hashes[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// warm loads h and waits until ristretto holds it.
func warm(b *testing.B, s *Store, h authz.KeyHash) {
	b.Helper()
	for range 10 {
		if _, err := s.Key(context.Background(), h); err != nil {
			b.Fatal(err)
		}
		s.keys.rc.Wait()
	}
}

// benchKeys is how many keys the memory benchmarks cache: set
// FOOTSTEP_BENCH_KEYS=1000000 for the figure of record; the default keeps
// the benchmarks quick.
func benchKeys(b *testing.B) int { return testkit.EnvCount(b, "FOOTSTEP_BENCH_KEYS", 20000) }

// fill reads n distinct keys through s, waiting for ristretto every so
// often so that Sets are not dropped for a full buffer.
func fill(b *testing.B, s *Store, from, n int) {
	b.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		if _, err := s.Key(ctx, benchHash(i)); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			s.keys.rc.Wait()
		}
	}
	s.keys.rc.Wait()
}

// memory returns the heap in use and the resident set, after a collection.
func memory() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, residentBytes()
}

// residentBytes reads the resident set size of this process, 0 where
// /proc is not there.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// BenchmarkStoreMemory caches FOOTSTEP_BENCH_KEYS keys in a store sized for
// them and reports the heap and resident bytes each one costs, counters and
// ristretto bookkeeping included.
func BenchmarkStoreMemory(b *testing.B) {
	n := benchKeys(b)
	for b.Loop() {
		heap0, rss0 := memory()
		s, err := New(Config{Loader: benchLoader{}, MaxBytes: int64(n) * bytesPerEntry * accountShare / (accountShare - 1) * 11 / 10})
		if err != nil {
			b.Fatal(err)
		}
		caughtUp(s)
		fill(b, s, 0, n)
		heap1, rss1 := memory()
		// What a collection costs with every key cached: the collector marks
		// what the store holds on each cycle (run with -cpu 1 for one core).
		start := time.Now()
		runtime.GC()
		b.ReportMetric(float64(time.Since(start).Microseconds())/1e3, "gc-ms")
		st := s.Stats().Keys
		cached := st.Loads - st.Evicted - st.Rejected - st.DroppedSets
		b.ReportMetric(float64(heap1-heap0)/float64(cached), "heap-B/key")
		b.ReportMetric(float64(rss1-rss0)/float64(cached), "rss-B/key")
		b.ReportMetric(float64(cached), "keys")
		s.Close()
	}
}

// BenchmarkStoreMemoryBound shows that the memory budget, not the number of
// keys read, bounds the cache: a 4 MiB store reads one budget's worth of
// keys, then four times as many, and reports the heap after each.
func BenchmarkStoreMemoryBound(b *testing.B) {
	const budget = minBytes * 4
	capacity := budget / bytesPerEntry
	for b.Loop() {
		heap0, _ := memory()
		s, err := New(Config{Loader: benchLoader{}, MaxBytes: budget})
		if err != nil {
			b.Fatal(err)
		}
		caughtUp(s)
		fill(b, s, 0, capacity)
		heap1, _ := memory()
		fill(b, s, capacity, 3*capacity)
		heap4, _ := memory()
		b.ReportMetric(float64(heap1-heap0)/(1<<20), "heap-MiB@1x")
		b.ReportMetric(float64(heap4-heap0)/(1<<20), "heap-MiB@4x")
		b.ReportMetric(float64(s.Stats().Keys.Evicted), "evicted")
		s.Close()
	}
}

// BenchmarkAdmissionCounters shows what fewer admission counters cost in hit
// ratio: a ristretto cache of 275,000 items, as the tables configure it,
// with admissionCounters' 2^21 counters (7.6 an item) and with the 2^22
// ristretto made of ten an item before (15.3), on a Zipf trace over twenty
// times as many keys, 30 reads an item, the first third to warm up.
func BenchmarkAdmissionCounters(b *testing.B) {
	const items = 275_000
	for _, skew := range []float64{1.01, 1.1, 1.2} {
		for _, c := range []struct {
			name     string
			counters int64
		}{{"nearest", admissionCounters(items)}, {"ten-rounded-up", items * 10}} {
			b.Run(fmt.Sprintf("zipf=%.2f/%s", skew, c.name), func(b *testing.B) {
				for b.Loop() {
					b.ReportMetric(hitRatio(b, items, c.counters, skew), "hit-%")
				}
			})
		}
	}
}

func hitRatio(b *testing.B, items, counters int64, skew float64) float64 {
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, struct{}]{
		NumCounters: counters, MaxCost: items, BufferItems: 64, IgnoreInternalCost: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), skew, 1, uint64(items*20))
	var hits, reads int
	for i := range items * 30 {
		k := zipf.Uint64()*0x9e3779b97f4a7c15 + 1 // spread, as key hashes are
		_, ok := rc.Get(k)
		if !ok {
			rc.Set(k, struct{}{}, 1)
		}
		if i%1000 == 0 {
			rc.Wait()
		}
		if i >= items*10 {
			reads++
			if ok {
				hits++
			}
		}
	}
	return 100 * float64(hits) / float64(reads)
}
