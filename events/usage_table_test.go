package events

import (
	"testing"
	"unsafe"

	"github.com/footstep/authz/authz"
)

// TestUsageEntryLayout: what Record touches for an allowed request lies in
// the entry's first 64 bytes, and the entry fills the 192-byte size class,
// whose objects start on a 64-byte boundary.
func TestUsageEntryLayout(t *testing.T) {
	var e usageEntry
	if size := unsafe.Sizeof(e); size != 192 {
		t.Errorf("usageEntry is %d bytes; want 192 (adjust usageEntryPad)", size)
	}
	ok := unsafe.Offsetof(e.counts) + uintptr(countIndex(authz.CodeOK))*unsafe.Sizeof(e.counts[0])
	for name, end := range map[string]uintptr{
		"hash":           unsafe.Offsetof(e.hash) + unsafe.Sizeof(e.hash),
		"first":          unsafe.Offsetof(e.first) + unsafe.Sizeof(e.first),
		"last":           unsafe.Offsetof(e.last) + unsafe.Sizeof(e.last),
		"retired":        unsafe.Offsetof(e.retired) + unsafe.Sizeof(e.retired),
		"CodeOK's count": ok + unsafe.Sizeof(e.counts[0]),
	} {
		if end > 64 {
			t.Errorf("%s ends at byte %d of the entry; want within the first 64", name, end)
		}
	}
	seen := map[int]authz.Code{}
	for _, c := range authz.Codes {
		i := countIndex(c)
		if i < 0 || i >= numCodes {
			t.Fatalf("countIndex(%v) = %d; want 0 to %d", c, i, numCodes-1)
		}
		if prev, dup := seen[i]; dup {
			t.Errorf("countIndex(%v) = countIndex(%v) = %d", c, prev, i)
		}
		seen[i] = c
	}
}
