package events

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestFPTableMatchesAMap drives an fpTable and a map with the same random
// records, revisions past 32 bits and resets included, and compares every
// answer.
func TestFPTableMatchesAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	var tab fpTable
	want := map[uint64]uint64{}
	var held []uint64
	for op := range 100_000 {
		fp := r.Uint64()
		if r.IntN(4) == 0 && len(held) > 0 {
			fp = held[len(held)-1] ^ uint64(1+r.IntN(255)) // the same home slot
		}
		if r.IntN(50) == 0 {
			fp = 0
		}
		if r.IntN(3) == 0 && len(held) > 0 { // a record changed again
			fp = held[r.IntN(len(held))]
		}
		rev := r.Uint64N(1 << 20)
		if op > 75_000 && r.IntN(10) == 0 {
			rev = math.MaxUint32 + r.Uint64N(1<<40)
		}
		prev, had := want[fp]
		want[fp] = max(prev, rev)
		if !had {
			held = append(held, fp)
		}
		if added := tab.raise(fp, rev); added == had {
			t.Fatalf("op %d: raise(%#x, %d) added %v; want %v", op, fp, rev, added, !had)
		}
		probe := r.Uint64()
		if got, ok := tab.get(probe); got != want[probe] || ok != (want[probe] > 0 || probe == 0 && tab.zero) {
			if _, held := want[probe]; ok != held {
				t.Fatalf("op %d: get(%#x) = %d, %v; want %d, %v", op, probe, got, ok, want[probe], held)
			}
		}
		if got, ok := tab.get(fp); !ok || got != want[fp] {
			t.Fatalf("op %d: get(%#x) = %d, %v; want %d", op, fp, got, ok, want[fp])
		}
		if tab.len() != len(want) {
			t.Fatalf("op %d: len %d; want %d", op, tab.len(), len(want))
		}
		if op == 50_000 {
			tab.reset()
			clear(want)
			held = held[:0]
		}
	}
	for fp, rev := range want {
		if got, ok := tab.get(fp); !ok || got != rev {
			t.Fatalf("get(%#x) = %d, %v; want %d", fp, got, ok, rev)
		}
	}
	if tab.revs64 == nil {
		t.Error("revisions past 32 bits did not widen the table")
	}
}

// TestFPTableBytesPerRecord: 13.3 to 16 bytes a record while revisions fit
// 32 bits, whatever the number of records.
func TestFPTableBytesPerRecord(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	var tab fpTable
	for n := 1; n <= 300_000; n++ {
		tab.raise(r.Uint64()|1, uint64(n))
		if n < 1000 {
			continue
		}
		if per := float64(tab.bytes()) / float64(tab.len()); per > 16 || per < 13.3 {
			t.Fatalf("%d records: %.2f bytes a record; want 13.3 to 16", n, per)
		}
	}
}

// BenchmarkFPTable compares the key index's table with the Go map it
// replaced, filled with a million random fingerprints: filling it (per
// record), finding a held fingerprint, and ruling out one never held, the
// sprayed key's question.
func BenchmarkFPTable(b *testing.B) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(1, 2))
	fps := make([]uint64, n)
	for i := range fps {
		fps[i] = r.Uint64() | 1
	}
	var tab fpTable
	m := map[uint64]uint64{}
	b.Run("fill/table", func(b *testing.B) {
		for b.Loop() {
			tab = fpTable{}
			for i, fp := range fps {
				tab.raise(fp, uint64(i))
			}
		}
		b.ReportMetric(float64(tab.bytes())/n, "B/record")
	})
	b.Run("fill/map", func(b *testing.B) {
		for b.Loop() {
			m = map[uint64]uint64{}
			for i, fp := range fps {
				m[fp] = max(m[fp], uint64(i))
			}
		}
	})
	b.Run("held/table", func(b *testing.B) {
		i := 0
		for b.Loop() {
			tab.get(fps[i%n])
			i++
		}
	})
	b.Run("held/map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_ = m[fps[i%n]]
			i++
		}
	})
	b.Run("absent/table", func(b *testing.B) {
		for b.Loop() {
			tab.get(r.Uint64() &^ 1)
		}
	})
	b.Run("absent/map", func(b *testing.B) {
		for b.Loop() {
			_ = m[r.Uint64()&^1]
		}
	})
}

// BenchmarkKeyIndexFill fills the key index with ten million random key
// fingerprints, as a replay of a large bucket does, and reports its bytes a
// record and the longest single record, a growth included: readers of the
// index wait that long.
func BenchmarkKeyIndexFill(b *testing.B) {
	const n = 10_000_000
	for b.Loop() {
		r := rand.New(rand.NewPCG(1, 2))
		ix := newKeyIndex()
		var worst time.Duration
		for i := range n {
			start := time.Now()
			ix.record(r.Uint64(), true, uint64(i+1))
			worst = max(worst, time.Since(start))
		}
		b.ReportMetric(float64(ix.bytes())/n, "B/record")
		b.ReportMetric(float64(worst.Microseconds()), "worst-record-µs")
	}
}
