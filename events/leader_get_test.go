package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStoreLeaderRead: reads through the stream leader give what direct
// gets give, plus the revision of a delete or purge marker, and fail closed
// when the stream is gone or NATS is down.
func TestStoreLeaderRead(t *testing.T) {
	s := startServer(t)
	c := connect(t, s)
	ctx := testCtx(t)
	kv := openBucket(t, c)
	leader := events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	present, deleted, purged, garbled, never := hashOf("sk_live_lp"), hashOf("sk_live_ld"), hashOf("sk_live_lx"), hashOf("sk_live_lg"), hashOf("sk_live_ln")
	rev := put(t, kv, events.KeyKVKey(present), activeJSON)
	put(t, kv, events.KeyKVKey(deleted), activeJSON)
	if err := kv.Delete(ctx, events.KeyKVKey(deleted)); err != nil {
		t.Fatal(err)
	}
	delRev := lastRevision(t, kv)
	put(t, kv, events.KeyKVKey(purged), activeJSON)
	if err := kv.Purge(ctx, events.KeyKVKey(purged)); err != nil {
		t.Fatal(err)
	}
	purgeRev := lastRevision(t, kv)
	badRev := put(t, kv, events.KeyKVKey(garbled), `{"key_id":"k1"}`)

	tests := []struct {
		name    string
		h       authz.KeyHash
		want    authz.KeyEntry
		wantErr error
	}{
		{"present", present, authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}}, nil},
		{"deleted", deleted, authz.KeyEntry{Revision: delRev, Presence: authz.Absent}, nil},
		{"purged", purged, authz.KeyEntry{Revision: purgeRev, Presence: authz.Absent}, nil},
		{"never written", never, authz.KeyEntry{Presence: authz.Absent}, nil},
		{"unreadable", garbled, authz.KeyEntry{Revision: badRev, Presence: authz.Unreadable}, events.ErrBadRecord},
	}
	for _, tt := range tests {
		got, err := leader.LoadKey(ctx, tt.h)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("leader LoadKey(%s) = %+v, %v; want %+v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}

	if err := c.JetStream().DeleteKeyValue(ctx, events.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	var apiErr *jetstream.APIError
	if got, err := leader.LoadKey(ctx, present); !errors.As(err, &apiErr) || got != (authz.KeyEntry{}) {
		t.Errorf("LoadKey of a deleted bucket = %+v, %v; want the zero entry and a JetStream API error", got, err)
	}
	s.stop()
	down, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if got, err := leader.LoadKey(down, present); err == nil || got != (authz.KeyEntry{}) {
		t.Errorf("LoadKey with NATS down = %+v, %v; want the zero entry and an error", got, err)
	}
}

func lastRevision(tb testing.TB, kv jetstream.KeyValue) uint64 {
	tb.Helper()
	st, err := kv.Status(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}

// BenchmarkLoad compares the miss path's reads on one embedded server. One
// read (an account): the client's direct get and a read through the stream
// leader. An active key, whose tombstone is looked up too: by a second read
// without a watcher's index, by the index with one.
func BenchmarkLoad(b *testing.B) {
	c := connect(b, startServer(b))
	kv := openBucket(b, c)
	h := hashOf("sk_live_bench")
	put(b, kv, events.KeyKVKey(h), activeJSON)
	put(b, kv, events.AccountKVKey("a1"), `{"balance":"5"}`)
	direct, leader := events.NewLoader(kv), events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	indexed := events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	indexed.UseIndex(runWatcher(b, c, kv, newSink(), events.WatchObserver{}, time.Second))
	account := func(s *events.Loader) func(context.Context) (authz.Presence, error) {
		return func(ctx context.Context) (authz.Presence, error) {
			e, err := s.LoadAccount(ctx, "a1")
			return e.Presence, err
		}
	}
	key := func(s *events.Loader) func(context.Context) (authz.Presence, error) {
		return func(ctx context.Context) (authz.Presence, error) { e, err := s.LoadKey(ctx, h); return e.Presence, err }
	}
	for _, bb := range []struct {
		name string
		load func(context.Context) (authz.Presence, error)
	}{
		{"account/direct", account(direct)},
		{"account/leader", account(leader)},
		{"key/direct_2_reads", key(direct)},
		{"key/leader_2_reads", key(leader)},
		{"key/leader_indexed", key(indexed)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if p, err := bb.load(ctx); err != nil || p != authz.Present {
					b.Fatalf("load = %v, %v", p, err)
				}
			}
		})
	}
}
