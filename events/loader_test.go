package events_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
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

// floorIndex is a WatchIndex whose floors the test sets: a watcher that has
// applied revisions the bucket's answer does not have yet.
type floorIndex struct{ key, account atomic.Uint64 }

func (*floorIndex) Revoked(authz.KeyHash, uint64) (uint64, bool, bool) { return 0, false, false }

func (f *floorIndex) Floor(kvKey string) uint64 {
	if events.ParseKVKey(kvKey).Kind == events.KindAccount {
		return f.account.Load()
	}
	return f.key.Load()
}

// TestLoaderRetriesReadsBehindTheWatch: a read older than the revision the
// watch applied for its record is never the answer; it is read again until
// the bucket catches up, and fails closed when it does not in time.
func TestLoaderRetriesReadsBehindTheWatch(t *testing.T) {
	c := connect(t, startServer(t))
	kv := openBucket(t, c)
	h := hashOf("sk_live_behind")
	rev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k1","account_id":"a1","state":"active"}`)
	acctRev := put(t, kv, events.AccountKVKey("a1"), `{"balance":"5"}`)
	idx := &floorIndex{}
	loader := events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	loader.UseIndex(idx)

	idx.key.Store(rev)
	idx.account.Store(acctRev)
	if e, err := loader.LoadKey(testCtx(t), h); err != nil || e.Revision != rev {
		t.Fatalf("LoadKey at the floor = %+v, %v; want revision %d", e, err, rev)
	}
	if n := loader.BehindReads(); n != 0 {
		t.Fatalf("BehindReads() = %d after reads at the floor; want 0", n)
	}

	// The watch has applied a suspension the bucket's answer lacks.
	idx.key.Store(rev + 2)
	idx.account.Store(acctRev + 2)
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	if e, err := loader.LoadKey(short(), h); !errors.Is(err, events.ErrBehindWatch) || e.Presence != authz.Unreadable {
		t.Errorf("LoadKey behind the watch = %+v, %v; want Unreadable, ErrBehindWatch", e, err)
	}
	if e, err := loader.LoadAccount(short(), "a1"); !errors.Is(err, events.ErrBehindWatch) || e.Presence != authz.Unreadable {
		t.Errorf("LoadAccount behind the watch = %+v, %v; want Unreadable, ErrBehindWatch", e, err)
	}
	if n := loader.BehindReads(); n < 2 {
		t.Errorf("BehindReads() = %d; want at least 2", n)
	}

	// The bucket catches up while the load waits: the newer state is the answer.
	done := make(chan struct{})
	var (
		e   authz.KeyEntry
		err error
	)
	go func() { defer close(done); e, err = loader.LoadKey(testCtx(t), h) }()
	put(t, kv, events.AccountKVKey("a2"), `{"balance":"1"}`) // revision rev+2; the suspension is rev+3
	newRev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k1","account_id":"a1","state":"suspended"}`)
	<-done
	if err != nil || e.Revision != newRev || e.Record.State != authz.StateSuspended {
		t.Errorf("LoadKey once the bucket caught up = %+v, %v; want suspended at revision %d", e, err, newRev)
	}
}
