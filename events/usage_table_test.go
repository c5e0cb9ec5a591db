package events

import (
	"testing"
	"unsafe"

	"github.com/footstep/authz/authz"
)

// TestUsageSlotLayout: what Record touches for an allowed request is one
// 64-byte slot, and every code but CodeOK has a counter in the usageKey.
func TestUsageSlotLayout(t *testing.T) {
	if size := unsafe.Sizeof(usageSlot{}); size != 64 {
		t.Errorf("usageSlot is %d bytes; want 64, one cache line", size)
	}
	if int(authz.CodeOK) != numCodes-1 {
		t.Fatalf("CodeOK is %d; usageKey.denied assumes it is the last code, %d", authz.CodeOK, numCodes-1)
	}
	if tab := newUsageTable(DefaultUsageMaxKeys); uintptr(unsafe.Pointer(&tab.slots[0]))%64 != 0 {
		t.Errorf("a default table's slots start at %p; want a 64-byte boundary", &tab.slots[0])
	}
}
