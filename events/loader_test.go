package events_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStoreLoad(t *testing.T) {
	_, ctx, kv := startBucket(t)
	store := events.NewLoader(kv)
	present, deleted, garbled, never := hashOf("sk_live_present"), hashOf("sk_live_deleted"), hashOf("sk_live_garbled"), hashOf("sk_live_never")
	rev := put(t, kv, events.KeyKVKey(present), `{"key_id":"k1","account_id":"a1","state":"active"}`)
	put(t, kv, events.KeyKVKey(deleted), `{"key_id":"k2","account_id":"a1","state":"active"}`)
	if err := kv.Delete(ctx, events.KeyKVKey(deleted)); err != nil {
		t.Fatal(err)
	}
	badRev := put(t, kv, events.KeyKVKey(garbled), `{"key_id":"k3","account_id":"a1","state":"active","state":"revoked"}`)

	checkLoadKey(t, ctx, "", store, []loadKeyTest{
		{"present", present, authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}}, nil},
		{"deleted", deleted, authz.KeyEntry{Presence: authz.Absent}, nil},
		{"never written", never, authz.KeyEntry{Presence: authz.Absent}, nil},
		{"unreadable", garbled, authz.KeyEntry{Revision: badRev, Presence: authz.Unreadable}, events.ErrBadRecord},
	})

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
	_, _, kv := bucketOn(t, s)
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got, err := events.NewLoader(kv).LoadKey(ctx, hashOf("sk_live_x"))
	if err == nil || got != (authz.KeyEntry{}) {
		t.Errorf("LoadKey with NATS down = %+v, %v; want zero entry and an error", got, err)
	}
}

// loadKeyTest is a key a Loader is asked for, and what it must answer.
type loadKeyTest struct {
	name    string
	h       authz.KeyHash
	want    authz.KeyEntry
	wantErr error
}

// checkLoadKey asks l for every key of tests; what names the loader in
// errors.
func checkLoadKey(t *testing.T, ctx context.Context, what string, l *events.Loader, tests []loadKeyTest) {
	t.Helper()
	for _, tt := range tests {
		got, err := l.LoadKey(ctx, tt.h)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("%sLoadKey(%s) = %+v, %v; want %+v, %v", what, tt.name, got, err, tt.want, tt.wantErr)
		}
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
	c, ctx, kv := startBucket(t)
	h := hashOf("sk_live_behind")
	rev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k1","account_id":"a1","state":"active"}`)
	acctRev := put(t, kv, events.AccountKVKey("a1"), `{"balance":"5"}`)
	idx := &floorIndex{}
	loader := events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	loader.UseIndex(idx)

	idx.key.Store(rev)
	idx.account.Store(acctRev)
	if e, err := loader.LoadKey(ctx, h); err != nil || e.Revision != rev {
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
	go func() { defer close(done); e, err = loader.LoadKey(ctx, h) }()
	put(t, kv, events.AccountKVKey("a2"), `{"balance":"1"}`) // revision rev+2; the suspension is rev+3
	newRev := put(t, kv, events.KeyKVKey(h), `{"key_id":"k1","account_id":"a1","state":"suspended"}`)
	<-done
	if err != nil || e.Revision != newRev || e.Record.State != authz.StateSuspended {
		t.Errorf("LoadKey once the bucket caught up = %+v, %v; want suspended at revision %d", e, err, newRev)
	}
}

// TestStoreLeaderRead: reads through the stream leader give what direct
// gets give, plus the revision of a delete or purge marker, and fail closed
// when the stream is gone or NATS is down.
func TestStoreLeaderRead(t *testing.T) {
	s := startServer(t)
	c, ctx, kv := bucketOn(t, s)
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

	checkLoadKey(t, ctx, "leader ", leader, []loadKeyTest{
		{"present", present, authz.KeyEntry{Revision: rev, Presence: authz.Present, Record: authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}}, nil},
		{"deleted", deleted, authz.KeyEntry{Revision: delRev, Presence: authz.Absent}, nil},
		{"purged", purged, authz.KeyEntry{Revision: purgeRev, Presence: authz.Absent}, nil},
		{"never written", never, authz.KeyEntry{Presence: authz.Absent}, nil},
		{"unreadable", garbled, authz.KeyEntry{Revision: badRev, Presence: authz.Unreadable}, events.ErrBadRecord},
	})

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

// TestLeaderReadAllocatesLittle: a read through the stream leader, which
// every cache miss makes, allocates a few kilobytes, not a subscription's
// default queue of 65,536 messages (512 KiB a read before it took its answer
// on a channel of one). The count includes the embedded NATS server's own
// allocations for the request, all in this process.
func TestLeaderReadAllocatesLittle(t *testing.T) {
	c, ctx, kv := startBucket(t)
	put(t, kv, events.AccountKVKey("a1"), `{"balance":"5"}`)
	leader := events.NewLoader(kv, events.ReadFromLeader(c.NATS()))
	read := func() {
		if e, err := leader.LoadAccount(ctx, "a1"); err != nil || e.Presence != authz.Present {
			t.Fatalf("LoadAccount = %+v, %v", e, err)
		}
	}
	read() // the connection's first request sets up what later ones reuse
	const reads = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range reads {
		read()
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / reads
	t.Logf("%d KiB allocated a read", per>>10)
	if per > 128<<10 {
		t.Errorf("a leader read allocated %d KiB, counting the server's share; want at most 128", per>>10)
	}
}

// BenchmarkLoad compares the miss path's reads on one embedded server. One
// read (an account): the client's direct get and a read through the stream
// leader. An active key, whose tombstone is looked up too: by a second read
// without a watcher's index, by the index with one.
func BenchmarkLoad(b *testing.B) {
	c, _, kv := startBucket(b)
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
