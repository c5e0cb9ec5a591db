package events

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/footstep/authz/authz"
)

// TestUsageSlotLayout: what Record touches for an allowed request is one
// 64-byte slot without pointers (the collector skips the slots), and every
// code but CodeOK has a counter in the usageKey.
func TestUsageSlotLayout(t *testing.T) {
	if size := unsafe.Sizeof(usageSlot{}); size != 64 {
		t.Errorf("usageSlot is %d bytes; want 64, one cache line", size)
	}
	if path := pointerIn(reflect.TypeFor[usageSlot](), "usageSlot"); path != "" {
		t.Errorf("%s holds a pointer; the garbage collector would scan every slot", path)
	}
	if int(authz.CodeOK) != numCodes-1 {
		t.Fatalf("CodeOK is %d; usageKey.denied assumes it is the last code, %d", authz.CodeOK, numCodes-1)
	}
	if tab := newUsageTable(DefaultUsageMaxKeys); uintptr(unsafe.Pointer(&tab.slots[0]))%64 != 0 {
		t.Errorf("a default table's slots start at %p; want a 64-byte boundary", &tab.slots[0])
	}
}

// pointerIn returns the path of a field of t that holds a pointer, or "".
func pointerIn(t reflect.Type, path string) string {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String,
		reflect.Interface, reflect.Chan, reflect.Func:
		return path
	case reflect.Array:
		return pointerIn(t.Elem(), path+"[]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if p := pointerIn(f.Type, path+"."+f.Name); p != "" {
				return p
			}
		}
	}
	return ""
}
