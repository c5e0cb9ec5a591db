package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestUsageRecorder(t *testing.T) {
	c, ctx := startConn(t)
	ukv, err := events.OpenUsageBucket(ctx, c.JetStream(), events.DefaultUsageBucket, 1)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *nats.Msg, 16)
	sub, err := c.NATS().ChanSubscribe(events.UsageSubject, msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := c.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	var published, overflow atomic.Int64
	newRecorder := func(replica string) *events.UsageRecorder {
		u, err := events.NewUsageRecorder(events.UsageConfig{NATS: c.NATS(), Replica: replica, OpenBucket: func(context.Context) (jetstream.KeyValue, error) { return ukv, nil }, MaxKeys: 2,
			Observer: events.UsageObserver{Published: func(n int) { published.Add(int64(n)) }, Overflow: func() { overflow.Add(1) }}})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	r1, r2 := newRecorder("r1"), newRecorder("r2")
	const key = "sk_live_usage_secret_0001"
	h := hashOf(key)
	rec := authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	r1.Record(h, rec, authz.CodeOK, t0.Add(time.Second))
	r1.Record(h, rec, authz.CodeOK, t0)
	r1.Record(h, rec, authz.CodeInsufficientBalance, t0.Add(2*time.Second))
	r1.Record(hashOf("sk_live_usage_2"), rec, authz.CodeOK, t0)
	r1.Record(hashOf("sk_live_usage_3"), rec, authz.CodeOK, t0) // a third key: overflow
	r2.Record(h, rec, authz.CodeKeyRevoked, t0.Add(time.Minute))
	if err := r1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if published.Load() != 3 || overflow.Load() != 1 {
		t.Errorf("published %d, overflow %d; want 3 and 1", published.Load(), overflow.Load())
	}
	var batches []events.UsageBatch
	for len(batches) < 2 {
		select {
		case m := <-msgs:
			if strings.Contains(string(m.Data), key) || strings.Contains(m.Subject, key) {
				t.Fatalf("a usage message holds the plaintext key: %s", m.Data)
			}
			var b events.UsageBatch
			if err := json.Unmarshal(m.Data, &b); err != nil {
				t.Fatal(err)
			}
			batches = append(batches, b)
		case <-ctx.Done():
			t.Fatalf("got %d usage messages; want 2", len(batches))
		}
	}
	if b := batches[0]; b.Replica != "r1" || len(b.Keys) != 2 {
		t.Fatalf("first batch = %+v; want r1 with 2 keys", b)
	}
	for _, s := range batches[0].Keys {
		if s.KeyHash == h.String() && (!s.FirstSeen.Equal(t0) || !s.LastSeen.Equal(t0.Add(2*time.Second)) ||
			s.Counts["ok"] != 2 || s.Counts["insufficient_balance"] != 1 || s.Replica != "r1" || s.KeyID != "k1") {
			t.Errorf("summary = %+v", s)
		}
	}
	u, _, err := events.GetUsage(ctx, ukv, h)
	if err != nil {
		t.Fatal(err)
	}
	if !u.FirstSeen.Equal(t0) || !u.LastSeen.Equal(t0.Add(time.Minute)) || u.Replica != "r2" ||
		u.Counts["ok"] != 2 || u.Counts["key_revoked"] != 1 || u.Counts["insufficient_balance"] != 1 {
		t.Errorf("merged usage = %+v; want first t0, last t0+1m by r2, counts summed", u)
	}
	if err := r1.Flush(ctx); err != nil || published.Load() != 3 {
		t.Errorf("empty flush = %v, published %d; want nothing more", err, published.Load())
	}
	if _, _, err := events.GetUsage(ctx, ukv, hashOf("sk_live_never_used")); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("GetUsage(never used) = %v; want ErrNotFound", err)
	}
}

func TestMergeUsage(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	stored := events.KeyUsage{KeyID: "k_old", FirstSeen: t0, LastSeen: t0.Add(time.Hour), Counts: map[string]uint64{"ok": 5}, Replica: "a"}
	next := events.KeyUsage{KeyID: "k_new", FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(2 * time.Minute), Counts: map[string]uint64{"ok": 1, "key_suspended": 2}, Replica: "b"}
	m := events.MergeUsage(stored, next)
	if !m.FirstSeen.Equal(t0) || !m.LastSeen.Equal(t0.Add(time.Hour)) || m.Replica != "a" || m.KeyID != "k_old" ||
		m.Counts["ok"] != 6 || m.Counts["key_suspended"] != 2 {
		t.Errorf("MergeUsage(older summary) = %+v", m)
	}
	if m := events.MergeUsage(events.KeyUsage{}, next); !m.FirstSeen.Equal(next.FirstSeen) || m.Counts["ok"] != 1 {
		t.Errorf("MergeUsage(nothing stored) = %+v", m)
	}
}

// TestUsageConfigRejected: a configuration the recorder cannot honour is an
// error that says why, not a recorder.
func TestUsageConfigRejected(t *testing.T) {
	for _, cfg := range []events.UsageConfig{
		{},
		{NATS: &nats.Conn{}, MaxKeys: -1},
		{NATS: &nats.Conn{}, Interval: -time.Second},
		{NATS: &nats.Conn{}, MaxKeys: math.MaxInt32 + 1},
	} {
		if u, err := events.NewUsageRecorder(cfg); err == nil || u != nil {
			t.Errorf("NewUsageRecorder(max keys %d, interval %v, NATS %v) = %v, %v; want an error", cfg.MaxKeys, cfg.Interval, cfg.NATS != nil, u, err)
		}
	}
}

func BenchmarkUsageRecord(b *testing.B) {
	u, err := events.NewUsageRecorder(events.UsageConfig{NATS: &nats.Conn{}})
	if err != nil {
		b.Fatal(err)
	}
	h := hashOf("sk_live_bench_usage")
	rec := authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		u.Record(h, rec, authz.CodeOK, now)
	}
}

// TestUsageRecorderConcurrentFlush: checks recorded while flushes run are
// each counted once, in one interval or the next, and a key keeps being
// tracked across intervals while another takes the room of an idle one.
func TestUsageRecorderConcurrentFlush(t *testing.T) {
	c, ctx := startConn(t)
	var total atomic.Uint64
	msgs := make(chan *nats.Msg, 1024)
	sub, err := c.NATS().ChanSubscribe(events.UsageSubject, msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	var overflow atomic.Int64
	u, err := events.NewUsageRecorder(events.UsageConfig{NATS: c.NATS(), Replica: "r", MaxKeys: 4,
		Observer: events.UsageObserver{Overflow: func() { overflow.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	rec := authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive}
	const workers, each = 4, 2000
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			h := hashOf("sk_live_concurrent_" + string(rune('a'+w)))
			for range each {
				u.Record(h, rec, authz.CodeOK, time.Now())
			}
		}()
	}
	for finished := 0; finished < workers; {
		select {
		case <-done:
			finished++
		default:
			if err := u.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	for total.Load() < workers*each {
		select {
		case m := <-msgs:
			var b events.UsageBatch
			if err := json.Unmarshal(m.Data, &b); err != nil {
				t.Fatal(err)
			}
			for _, s := range b.Keys {
				total.Add(s.Counts["ok"])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("counted %d checks; want %d", total.Load(), workers*each)
		}
	}
	if got := total.Load(); got != workers*each || overflow.Load() != 0 {
		t.Errorf("counted %d checks, overflow %d; want %d and 0", got, overflow.Load(), workers*each)
	}
}

// TestUsageRecorderIdleKeysMakeRoom: a tracked key keeps its room until it
// has gone unused for two intervals in a row.
func TestUsageRecorderIdleKeysMakeRoom(t *testing.T) {
	c, ctx := startConn(t)
	var overflow atomic.Int64
	u, err := events.NewUsageRecorder(events.UsageConfig{NATS: c.NATS(), MaxKeys: 1,
		Observer: events.UsageObserver{Overflow: func() { overflow.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	rec := authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive}
	a, b := hashOf("sk_live_room_a"), hashOf("sk_live_room_b")
	u.Record(a, rec, authz.CodeOK, time.Now())
	for flushes, want := range []int64{1, 2, 3} {
		u.Record(b, rec, authz.CodeOK, time.Now())
		if overflow.Load() != want {
			t.Fatalf("after %d flushes: overflow %d; want %d (the first key holds the room)", flushes, overflow.Load(), want)
		}
		if err := u.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	u.Record(b, rec, authz.CodeOK, time.Now())
	if overflow.Load() != 3 {
		t.Errorf("after the first key went unused for two intervals: overflow %d; want 3 (room for the second)", overflow.Load())
	}
}

// BenchmarkUsageFlush measures one publication of usage: usageFlushKeys keys
// used once each, then Flush (the batched summaries on the subject, and each
// merged into the usage bucket with a read and a revision-checked write),
// against an embedded NATS server in this process. It reports the time per
// summary; the process CPU it reports includes the server's share.
//
//	go test -run '^$' -bench BenchmarkUsageFlush -benchtime 5x ./events
func BenchmarkUsageFlush(b *testing.B) {
	c := connect(b, startServer(b))
	ctx := context.Background()
	ukv, err := events.OpenUsageBucket(ctx, c.JetStream(), events.DefaultUsageBucket, 1)
	if err != nil {
		b.Fatal(err)
	}
	u, err := events.NewUsageRecorder(events.UsageConfig{NATS: c.NATS(), Bucket: ukv, Replica: "bench", MaxKeys: usageFlushKeys})
	if err != nil {
		b.Fatal(err)
	}
	hashes := make([]authz.KeyHash, usageFlushKeys)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("sk_live_bench_flush_%d", i))
	}
	rec := authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}
	var cpu time.Duration
	for b.Loop() {
		now := time.Now()
		for _, h := range hashes {
			u.Record(h, rec, authz.CodeOK, now)
		}
		start := processCPU(b)
		if err := u.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU(b) - start
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N*usageFlushKeys), "ns/summary")
	b.ReportMetric(float64(cpu)/float64(b.N*usageFlushKeys), "cpu-ns/summary")
}

// usageFlushKeys is how many keys one flush of BenchmarkUsageFlush carries.
const usageFlushKeys = 1000

// processCPU is the CPU time this process has used, user and system.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
