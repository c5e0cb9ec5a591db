package cache

import (
	"testing"

	"github.com/footstep/authz/authz"
)

// BenchmarkApplyDistinct is the watch's first sync: one change each of keys
// never read, in revision order.
func BenchmarkApplyDistinct(b *testing.B) {
	s := newBenchStore(b, DefaultMaxBytes)
	hashes := benchHashes(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.ApplyKey(hashes[i], authz.KeyEntry{Revision: uint64(2000 + i), Presence: authz.Present})
	}
}
