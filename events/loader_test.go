package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

func TestOpenBucketSettings(t *testing.T) {
	c := connect(t, startServer(t))
	ctx := testCtx(t)
	kv := openBucket(t, c)
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.Config()
	if cfg.History != 1 || cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 ||
		cfg.MaxValueSize != events.MaxValueSize || cfg.TTL != 0 || kv.Bucket() != events.DefaultBucket {
		t.Errorf("bucket config = %+v; want history 1, file, R1, max value %d, no TTL", cfg, events.MaxValueSize)
	}
	if _, err := events.OpenBucket(ctx, c.JetStream(), events.BucketConfig{}); err != nil {
		t.Errorf("second OpenBucket: %v", err)
	}
	for _, name := range []string{"bad.name", "a b", "x>", strings.Repeat("b", 65)} {
		_, err := events.OpenBucket(ctx, c.JetStream(), events.BucketConfig{Name: name})
		if !errors.Is(err, events.ErrBucketName) {
			t.Errorf("OpenBucket(%q) = %v; want ErrBucketName", name, err)
		}
	}
}

func TestStoreLoad(t *testing.T) {
	c := connect(t, startServer(t))
	ctx := testCtx(t)
	kv := openBucket(t, c)
	store := events.NewLoader(kv)
	present, deleted, garbled, never := hashOf("sk_live_present"), hashOf("sk_live_deleted"), hashOf("sk_live_garbled"), hashOf("sk_live_never")
	rev := put(t, kv, events.KeyKVKey(present), `{"key_id":"k1","account_id":"a1","state":"active"}`)
	put(t, kv, events.KeyKVKey(deleted), `{"key_id":"k2","account_id":"a1","state":"active"}`)
	if err := kv.Delete(ctx, events.KeyKVKey(deleted)); err != nil {
		t.Fatal(err)
	}
	badRev := put(t, kv, events.KeyKVKey(garbled), `{"key_id":"k3","account_id":"a1","state":"active","state":"revoked"}`)

	tests := []struct {
		name    string
		h       authz.KeyHash
		want    authz.KeyEntry
		wantErr error
	}{
		{"present", present, authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}}, nil},
		{"deleted", deleted, authz.KeyEntry{Presence: authz.Absent}, nil},
		{"never written", never, authz.KeyEntry{Presence: authz.Absent}, nil},
		{"unreadable", garbled, authz.KeyEntry{Revision: badRev, Presence: authz.Unreadable}, events.ErrBadRecord},
	}
	for _, tt := range tests {
		got, err := store.LoadKey(ctx, tt.h)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("LoadKey(%s) = %+v, %v; want %+v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}

	arev := put(t, kv, events.AccountKVKey("a1"), `{"balance":"12.50"}`)
	put(t, kv, events.AccountKVKey("a2"), `{"balance":12.5}`)
	if got, err := store.LoadAccount(ctx, "a1"); err != nil || got.Presence != authz.Present || got.Revision != arev || got.Account.Balance.String() != "12.50" {
		t.Errorf("LoadAccount(a1) = %+v, %v", got, err)
	}
	if got, err := store.LoadAccount(ctx, "a2"); !errors.Is(err, events.ErrBadRecord) || got.Presence != authz.Unreadable {
		t.Errorf("LoadAccount(a2) = %+v, %v; want unreadable", got, err)
	}
	if got, err := store.LoadAccount(ctx, "a3"); err != nil || got.Presence != authz.Absent {
		t.Errorf("LoadAccount(a3) = %+v, %v; want absent", got, err)
	}
}

func TestStoreLoadNATSDown(t *testing.T) {
	s := startServer(t)
	c := connect(t, s)
	kv := openBucket(t, c)
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got, err := events.NewLoader(kv).LoadKey(ctx, hashOf("sk_live_x"))
	if err == nil || got != (authz.KeyEntry{}) {
		t.Errorf("LoadKey with NATS down = %+v, %v; want zero entry and an error", got, err)
	}
}

func put(tb testing.TB, kv jetstream.KeyValue, key, value string) uint64 {
	tb.Helper()
	rev, err := kv.Put(context.Background(), key, []byte(value))
	if err != nil {
		tb.Fatalf("put %s: %v", key, err)
	}
	return rev
}
