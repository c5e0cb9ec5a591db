package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
)

// TestKeyBlobLayout: the fields end where the ids begin, and packing a key
// is one allocation, of 64 bytes for ids of 28 bytes together.
func TestKeyBlobLayout(t *testing.T) {
	if blobIDs != blobPresence+1 {
		t.Errorf("the ids start at %d; want right after the last field, at %d", blobIDs, blobPresence+1)
	}
	e := authz.KeyEntry{Revision: 1, Presence: authz.Present, Record: authz.KeyRecord{
		KeyID: "key_0123456789", AccountID: "acct_012345678", State: authz.StateActive}}
	if n := blobIDs + len(e.Record.KeyID) + len(e.Record.AccountID); n > 64 {
		t.Errorf("a blob with ids of 28 bytes is %d bytes; want 64 at most", n)
	}
	h := hashOf("sk_live_layout")
	if n := testing.AllocsPerRun(100, func() { packKey(h, e, stamp{}) }); n != 1 {
		t.Errorf("packKey allocates %v times; want once", n)
	}
}

func TestKeyBlobRoundTrip(t *testing.T) {
	h := hashOf("sk_live_pack")
	record := func(state authz.KeyState, expires string) authz.KeyRecord {
		r := authz.KeyRecord{KeyID: "key_pack", AccountID: "acct_pack", State: state}
		if expires != "" {
			var err error
			if r.ExpiresAt, err = authz.ParseExpiry(expires); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	for _, e := range []authz.KeyEntry{
		{Revision: 1, Presence: authz.Absent},
		present(2, authz.StateActive),
		{Revision: 3, Presence: authz.Present, Record: record(authz.StateSuspended, "2031-02-03T04:05:06.123456789Z")},
		{Revision: 4, Presence: authz.Present, Record: record(authz.StateRevoked, "9999-12-31T23:59:59.999999999Z")},
		{Revision: 5, Presence: authz.Present, Record: record(authz.StateActive, "2000-01-01T00:00:00Z")},
		{Revision: 6, Presence: authz.Present, Record: authz.KeyRecord{
			KeyID: strings.Repeat("k", authz.MaxIDLen), AccountID: strings.Repeat("a", authz.MaxIDLen), State: authz.StateActive}},
	} {
		st := stamp{rev: e.Revision, epoch: 0xfedc_ba98, shard: shardCount - 1}
		b, ok := packKey(h, e, st)
		if !ok {
			t.Errorf("packKey(%v) refused it", e)
			continue
		}
		if got := b.stamped(); got != st {
			t.Errorf("stamp = %+v; want %+v", got, st)
		}
		got, ok := unpackKey(h, b)
		if !ok || got != e {
			t.Errorf("unpackKey(packKey(%v)) = %v, %v; want it back", e, got, ok)
		}
		other := h
		other[15] ^= 1 // ristretto's key, the first 8 bytes, is the same
		if got, ok := unpackKey(other, b); ok {
			t.Errorf("unpackKey of another key = %v; want no entry", got)
		}
	}
}

// TestUnpackableKeyIsNotCached: an entry packKey cannot give back exactly is
// answered as loaded, and loaded again on the next read.
func TestUnpackableKeyIsNotCached(t *testing.T) {
	odd := []authz.KeyEntry{
		present(1, "retired"),
		{Revision: 2, Presence: authz.Present, Record: authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive,
			ExpiresAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))}},
	}
	for _, e := range odd {
		s, l, h := newStoreWith(t, "sk_live_odd", e)
		for range 2 {
			if got, err := s.Key(context.Background(), h); err != nil || got != e {
				t.Fatalf("Key() = %v, %v; want %v", got, err, e)
			}
			s.keys.rc.Wait()
		}
		if n, st := l.Lookups(), s.Stats().Keys; n != 2 || st.DroppedSets != 2 {
			t.Errorf("loads of %v = %d, dropped Sets %d; want 2, one per read", e, n, st.DroppedSets)
		}
	}
}

func TestHitAllocatesNothing(t *testing.T) {
	s, _, h := newStoreWith(t, "sk_live_allocs", present(1, authz.StateActive))
	ctx := context.Background()
	s.Key(ctx, h)
	s.keys.rc.Wait()
	if n := testing.AllocsPerRun(100, func() { s.Key(ctx, h) }); n != 0 {
		t.Errorf("a hit allocates %v times; want none", n)
	}
}

// TestAdmissionCounters: the power of two nearest to ten counters an item.
func TestAdmissionCounters(t *testing.T) {
	for _, tt := range []struct{ items, want int64 }{
		{1, 8},
		{1_000_000, 1 << 23},
		{1_100_000, 1 << 23},
		{1_600_000, 1 << 24},
		{1 << 20, 1 << 23}, // 10,485,760 is nearer 2^23 than 2^24
	} {
		if got := admissionCounters(tt.items); got != tt.want {
			t.Errorf("admissionCounters(%d) = %d; want %d", tt.items, got, tt.want)
		}
	}
}
