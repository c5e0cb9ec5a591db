package events_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is an embedded server that a test can restart on the same port
// and store directory.
type testServer struct {
	tb   testing.TB
	dir  string
	addr string
	srv  *events.Embedded
}

func startServer(tb testing.TB) *testServer {
	tb.Helper()
	// A port outside the ephemeral range, so that a restart finds it free.
	s := &testServer{tb: tb, dir: tb.TempDir(), addr: testkit.FreeAddr(tb)}
	s.start()
	tb.Cleanup(func() {
		if s.srv != nil {
			s.srv.Shutdown()
		}
	})
	return s
}

func (s *testServer) start() {
	s.tb.Helper()
	srv, err := events.StartEmbedded(events.EmbeddedConfig{Addr: s.addr, Dir: s.dir})
	if err != nil {
		s.tb.Fatalf("StartEmbedded: %v", err)
	}
	s.srv, s.addr = srv, srv.Addr()
}

func (s *testServer) stop() {
	s.srv.Shutdown()
	s.srv = nil
}

func (s *testServer) url() string { return "nats://" + s.addr }

func connect(tb testing.TB, s *testServer) *events.Conn {
	tb.Helper()
	c, err := events.Connect(context.Background(), events.ConnConfig{URLs: []string{s.url()}})
	if err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

func openBucket(tb testing.TB, c *events.Conn) jetstream.KeyValue {
	tb.Helper()
	kv, err := events.OpenBucket(context.Background(), c.JetStream(), events.BucketConfig{})
	if err != nil {
		tb.Fatalf("OpenBucket: %v", err)
	}
	return kv
}

// reopenBucket creates the bucket again after it was deleted. The server
// removes a deleted stream's store in the background, and a create racing
// that removal can fail (JetStream error 10049); it is retried until it
// succeeds.
func reopenBucket(tb testing.TB, c *events.Conn) jetstream.KeyValue {
	tb.Helper()
	var (
		kv  jetstream.KeyValue
		err error
	)
	if !testkit.Poll(15*time.Second, func() bool {
		kv, err = events.OpenBucket(context.Background(), c.JetStream(), events.BucketConfig{})
		return err == nil
	}) {
		tb.Fatalf("OpenBucket after its deletion: %v", err)
	}
	return kv
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// startConn starts a server and returns a connection to it and a test
// context.
func startConn(tb testing.TB) (*events.Conn, context.Context) {
	tb.Helper()
	return connect(tb, startServer(tb)), testCtx(tb)
}

// startBucket starts a server and returns a connection to it, a test
// context and the bucket.
func startBucket(tb testing.TB) (*events.Conn, context.Context, jetstream.KeyValue) {
	tb.Helper()
	return bucketOn(tb, startServer(tb))
}

// bucketOn returns a connection to s, a test context and the bucket, for a
// test that stops or restarts s.
func bucketOn(tb testing.TB, s *testServer) (*events.Conn, context.Context, jetstream.KeyValue) {
	tb.Helper()
	c := connect(tb, s)
	return c, testCtx(tb), openBucket(tb, c)
}

func hashOf(key string) authz.KeyHash { return authz.APIKey(key).Hash() }

// recordingSink records what a Watcher applies.
type recordingSink struct {
	mu       sync.Mutex
	keys     map[authz.KeyHash]authz.KeyEntry
	accounts map[string]authz.AccountEntry
	resets   int
}

func newSink() *recordingSink {
	return &recordingSink{keys: map[authz.KeyHash]authz.KeyEntry{}, accounts: map[string]authz.AccountEntry{}}
}

func (s *recordingSink) ApplyKey(h authz.KeyHash, e authz.KeyEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.keys[h]; ok && prev.Revision >= e.Revision {
		panic("revision went backwards")
	}
	s.keys[h] = e
}

func (s *recordingSink) ApplyAccount(id string, e authz.AccountEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id] = e
}

func (s *recordingSink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = map[authz.KeyHash]authz.KeyEntry{}
	s.accounts = map[string]authz.AccountEntry{}
	s.resets++
}

func (s *recordingSink) key(h authz.KeyHash) (authz.KeyEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[h]
	return e, ok
}

func (s *recordingSink) account(id string) (authz.AccountEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.accounts[id]
	return e, ok
}

func (s *recordingSink) resetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resets
}

type counts struct{ applied, bad, refused, resync, stall atomic.Int64 }

func (c *counts) observer() events.WatchObserver {
	return events.WatchObserver{
		Applied:   func(time.Duration) { c.applied.Add(1) },
		BadRecord: func() { c.bad.Add(1) },
		Refused:   func() { c.refused.Add(1) },
		Resync:    func() { c.resync.Add(1) },
		Stall:     func() { c.stall.Add(1) },
	}
}

// runWatcher runs a watcher until the test ends and waits for its first sync.
// The check interval is short unless the test must show that a reconnect
// alone brings the watch back.
func runWatcher(tb testing.TB, c *events.Conn, kv jetstream.KeyValue, sink events.Sink, obs events.WatchObserver, check time.Duration) *events.Watcher {
	tb.Helper()
	return runWatcherWith(tb, c, kv, sink, events.WatcherConfig{
		Observer: obs, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		ProbeInterval: check,
	})
}

// runWatcherWith is runWatcher with a configuration of the test's own.
func runWatcherWith(tb testing.TB, c *events.Conn, kv jetstream.KeyValue, sink events.Sink, cfg events.WatcherConfig) *events.Watcher {
	tb.Helper()
	w, err := events.NewWatcher(c, kv, sink, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil {
			tb.Errorf("Run: %v", err)
		}
	}()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-w.Ready():
	case <-time.After(5 * time.Second):
		tb.Fatal("watcher not ready within 5s")
	}
	return w
}

// startWatch runs a watcher over kv with a short check interval, feeding a
// new sink and counts.
func startWatch(tb testing.TB, c *events.Conn, kv jetstream.KeyValue) (*recordingSink, *counts, *events.Watcher) {
	tb.Helper()
	sink, n := newSink(), &counts{}
	return sink, n, runWatcher(tb, c, kv, sink, n.observer(), 50*time.Millisecond)
}

func keyIs(sink *recordingSink, h authz.KeyHash, p authz.Presence, s authz.KeyState) func() bool {
	return func() bool {
		e, ok := sink.key(h)
		return ok && e.Presence == p && (p != authz.Present || e.Record.State == s)
	}
}

func checkNow(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !cond() {
		tb.Errorf("%s: not applied", what)
	}
}
