package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// testServer is a Server started in process on random ports, with its
// embedded NATS server in a temporary directory unless told otherwise.
type testServer struct {
	app    *Server
	client authv3.AuthorizationClient
	logs   *testkit.LogBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// testConfig is DefaultConfig on loopback with random ports and a temporary
// store, logging at debug level to logs.
func testConfig(tb testing.TB, logs *testkit.LogBuffer) Config {
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.EmbeddedNATSAddr, cfg.EmbeddedNATSDir = "127.0.0.1:0", tb.TempDir()
	cfg.Logger = logs.Logger(slog.LevelDebug)
	return cfg
}

// withStates wraps the cache that Checks read from.
func withStates(wrap func(envoy.States) envoy.States) func(*Config) {
	return func(c *Config) { c.wrapStates = wrap }
}

// startServer starts a Server with testConfig changed by opts, waits until
// it is ready, and stops it when the test ends.
func startServer(tb testing.TB, opts ...func(*Config)) *testServer {
	tb.Helper()
	logs := &testkit.LogBuffer{}
	cfg := testConfig(tb, logs)
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("New: %v", err)
	}
	s := &testServer{app: a, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(ctx) }()
	tb.Cleanup(s.stop)
	conn, err := grpc.NewClient(s.addr("grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("grpc client: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	s.client = authv3.NewAuthorizationClient(conn)
	testkit.Eventually(tb, 10*time.Second, "ready", a.ready)
	return s
}

func (s *testServer) stop() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}

func (s *testServer) addr(name string) string { return s.app.Addr(name).String() }

func (s *testServer) publisher() *events.Publisher { return s.app.nats.publisher }

// put writes a key and its account's balance.
// put writes an account's balance and a key, and waits until the server's
// watch has applied them: from then on the server knows the key (before,
// its index of existing keys may answer 403 without a lookup, as a real
// replica does for the moment between a put and its arrival).
func (s *testServer) put(tb testing.TB, key, keyID, account, balance string, state authz.KeyState) {
	tb.Helper()
	setBalance(tb, s.publisher(), account, balance)
	rev := putKey(tb, s.publisher(), key, keyID, account, state)
	testkit.Eventually(tb, 15*time.Second, "the key's put applied by the watch", func() bool {
		return s.app.nats.watcher.LastRevision() >= rev
	})
}

// waitCached repeats check until it passes and was answered from memory,
// key and account alike: ristretto applies a fill asynchronously and may
// drop it, so a key checked once is not yet known to be cached. Tests that
// then cut NATS off rely on it.
func waitCached(tb testing.TB, s *testServer, check func() bool) {
	tb.Helper()
	testkit.Eventually(tb, 15*time.Second, "answered from the cache", func() bool {
		before := s.app.store.Stats()
		ok := check()
		after := s.app.store.Stats()
		return ok && after.Keys.Hits > before.Keys.Hits && after.Accounts.Hits > before.Accounts.Hits &&
			after.Keys.Misses == before.Keys.Misses && after.Accounts.Misses == before.Accounts.Misses
	})
}
