package server

import (
	"bytes"
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
)

// testServer is a Server started in process on random ports, with its
// embedded NATS server in a temporary directory unless told otherwise.
type testServer struct {
	app    *Server
	client authv3.AuthorizationClient
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// testConfig is DefaultConfig on loopback with random ports and a temporary
// store, logging at debug level to logs.
func testConfig(tb testing.TB, logs *syncBuffer) Config {
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.EmbeddedNATSAddr, cfg.EmbeddedNATSDir = "127.0.0.1:0", tb.TempDir()
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
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
	logs := &syncBuffer{}
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
	waitFor(tb, "ready", 10*time.Second, a.ready)
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
func (s *testServer) put(tb testing.TB, key, keyID, account, balance string, state authz.KeyState) {
	tb.Helper()
	if _, err := s.publisher().SetBalance(context.Background(), account, mustBalance(tb, balance)); err != nil {
		tb.Fatal(err)
	}
	putKey(tb, s.publisher(), key, keyID, account, state)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
