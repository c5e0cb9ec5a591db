package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

func TestDecodeKeyExpiry(t *testing.T) {
	at := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	rec := authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive}
	expiring := rec
	expiring.ExpiresAt = at
	tests := []struct {
		name string
		in   string
		want authz.KeyRecord
		ok   bool
	}{
		{"old record", `{"key_id":"k","account_id":"a","state":"active"}`, rec, true},
		{"expires_at", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T00:00:00Z"}`, expiring, true},
		{"expires_at null", `{"key_id":"k","account_id":"a","state":"active","expires_at":null}`, rec, true},
		{"expires_at offset", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T01:00:00+01:00"}`, authz.KeyRecord{}, false},
		{"expires_at empty", `{"key_id":"k","account_id":"a","state":"active","expires_at":""}`, rec, true},
		{"expires_at date", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31"}`, authz.KeyRecord{}, false},
		{"expires_at number", `{"key_id":"k","account_id":"a","state":"active","expires_at":1767139200}`, authz.KeyRecord{}, false},
		{"expires_at 1970", `{"key_id":"k","account_id":"a","state":"active","expires_at":"1970-01-01T00:00:00Z"}`, authz.KeyRecord{}, false},
		{"expires_at twice", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T00:00:00Z","expires_at":"2099-12-31T00:00:00Z"}`, authz.KeyRecord{}, false},
		{"expires_at with a secret", `{"key_id":"k","account_id":"a","state":"active","expires_at":"sk_live_leakedZ"}`, authz.KeyRecord{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.DecodeKey([]byte(tt.in))
			if tt.ok && (err != nil || got != tt.want) {
				t.Fatalf("DecodeKey(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if !tt.ok && (err == nil || !errors.Is(err, events.ErrBadRecord)) {
				t.Fatalf("DecodeKey(%s) = %+v, %v; want ErrBadRecord", tt.in, got, err)
			}
			if err != nil && strings.Contains(err.Error(), "sk_live_") {
				t.Errorf("DecodeKey error quotes the value: %v", err)
			}
		})
	}
}

func TestEncodeKeyExpiry(t *testing.T) {
	rec := authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive,
		ExpiresAt: time.Date(2026, 12, 31, 0, 0, 0, 5e8, time.UTC)}
	b, err := events.EncodeKey(rec)
	if want := `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T00:00:00.5Z"}`; err != nil || string(b) != want {
		t.Fatalf("EncodeKey = %s, %v; want %s", b, err, want)
	}
	if got, err := events.DecodeKey(b); err != nil || got != rec {
		t.Errorf("DecodeKey(EncodeKey) = %+v, %v; want %+v", got, err, rec)
	}
	rec.ExpiresAt = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := events.EncodeKey(rec); !errors.Is(err, events.ErrBadRecord) {
		t.Errorf("EncodeKey(year 12000) = %v; want ErrBadRecord", err)
	}
}

// TestRawPutAfterExpiry: a raw put that drops the expiry of an expired key
// (judged by the entry's KV timestamp) is applied as revoked, written back
// as revoked with a tombstone, and a replica started afterwards answers
// revoked too. A put before the expiry instant moves it freely.
func TestRawPutAfterExpiry(t *testing.T) {
	c, ctx, kv := startBucket(t)
	r := startReplica(t, c, kv)
	h, early := hashOf("sk_live_expiring_raw"), hashOf("sk_live_not_yet_expired")

	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	put(t, kv, events.KeyKVKey(early), `{"key_id":"k2","account_id":"a1","state":"active","expires_at":"`+future+`"}`)
	rev := put(t, kv, events.KeyKVKey(early), activeJSON)
	testkit.Eventually(t, 10*time.Second, "expiry dropped before it", appliedAtLeast(r.sink, early, rev, authz.Present, authz.StateActive))

	past := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	put(t, kv, events.KeyKVKey(h), `{"key_id":"k1","account_id":"a1","state":"active","expires_at":"`+past+`"}`)
	rev = put(t, kv, events.KeyKVKey(h), activeJSON)
	testkit.Eventually(t, 10*time.Second, "put after expiry applied as revoked", appliedAtLeast(r.sink, h, rev, authz.Present, authz.StateRevoked))
	testkit.Eventually(t, 10*time.Second, "bucket written back as revoked", func() bool { return storedState(t, kv, h) == authz.StateRevoked })
	testkit.Eventually(t, 10*time.Second, "tombstone written", func() bool { return hasTombstone(kv, h) })
	if r.n.refused.Load() < 1 {
		t.Errorf("refused %d; want at least 1", r.n.refused.Load())
	}

	later := startReplica(t, c, kv)
	e, err := later.store.LoadKey(ctx, h)
	wantRevoked(t, "LoadKey on a replica started afterwards", e, err, rev)
	if e, _ := r.store.LoadKey(ctx, early); e.Record.State != authz.StateActive || !e.Record.ExpiresAt.IsZero() {
		t.Errorf("key whose expiry was dropped in time: %+v; want active, no expiry", e)
	}
}
