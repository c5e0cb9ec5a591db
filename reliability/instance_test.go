package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
)

// instanceConfig says how to build one footstep-authz from its parts.
type instanceConfig struct {
	URLs     []string
	User     string // NATS user name, with Password
	Password string
	Replicas int
	// MaxStaleness, when set, puts a freshness gate in front of every
	// lookup: cut off from NATS for longer, the engine answers 503.
	MaxStaleness time.Duration
	Logger       *slog.Logger
}

// instance is one footstep-authz built as cmd/footstep-authz wires it: a
// connection, the bucket, a cache.Store filled from events.Store and fed by
// an events.Watcher, an envoy.Engine behind a real gRPC server.
type instance struct {
	tb      testing.TB
	conn    *events.Conn
	store   *cache.Store
	watcher *events.Watcher
	fresh   *freshness
	client  authv3.AuthorizationClient
	counts  watchCounts

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	grpc     *grpc.Server
	cc       *grpc.ClientConn
}

// watchCounts counts what the watcher reported.
type watchCounts struct {
	applied, bad, refused, resync, stall atomic.Int64
	maxLag                               atomic.Int64 // nanoseconds
}

func (c *watchCounts) observer() events.WatchObserver {
	return events.WatchObserver{
		Applied: func(lag time.Duration) {
			c.applied.Add(1)
			for {
				cur := c.maxLag.Load()
				if int64(lag) <= cur || c.maxLag.CompareAndSwap(cur, int64(lag)) {
					return
				}
			}
		},
		BadRecord: func() { c.bad.Add(1) },
		Refused:   func() { c.refused.Add(1) },
		Resync:    func() { c.resync.Add(1) },
		Stall:     func() { c.stall.Add(1) },
	}
}

// startInstance builds and starts an instance; it does not wait for the
// first sync (see waitReady). It stops when the test ends.
func startInstance(tb testing.TB, cfg instanceConfig) *instance {
	tb.Helper()
	in := &instance{tb: tb, done: make(chan struct{})}
	tb.Cleanup(in.stop)
	conn, err := events.Connect(context.Background(), events.ConnConfig{
		URLs: cfg.URLs, User: cfg.User, Password: cfg.Password, Logger: cfg.Logger,
	})
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	in.conn = conn
	kv := openBucket(tb, conn, max(cfg.Replicas, 1))
	in.store, err = cache.New(cache.Config{Loader: events.NewStore(kv), MaxBytes: 8 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	in.watcher, err = events.NewWatcher(conn, kv, in.store, events.WatcherConfig{Logger: cfg.Logger, Observer: in.counts.observer()})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		defer close(in.done)
		if err := in.watcher.Run(ctx); err != nil {
			tb.Errorf("watcher: %v", err)
		}
	}()
	engineCfg := envoy.EngineConfig{States: in.store, Logger: cfg.Logger}
	if cfg.MaxStaleness > 0 {
		in.fresh = &freshness{watcher: in.watcher, conn: conn, max: cfg.MaxStaleness}
		engineCfg.Freshness = in.fresh
	}
	in.serve(tb, engineCfg, cfg.Logger)
	return in
}

func (in *instance) serve(tb testing.TB, cfg envoy.EngineConfig, log *slog.Logger) {
	tb.Helper()
	engine, err := envoy.NewEngine(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := envoy.NewServer(engine, log)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	in.grpc = grpc.NewServer()
	authv3.RegisterAuthorizationServer(in.grpc, srv)
	go func() { _ = in.grpc.Serve(l) }()
	in.cc, err = grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	in.client = authv3.NewAuthorizationClient(in.cc)
}

// waitReady waits for the first full sync.
func (in *instance) waitReady(within time.Duration) {
	in.tb.Helper()
	select {
	case <-in.watcher.Ready():
	case <-time.After(within):
		in.tb.Fatalf("instance not synced within %s", within)
	}
}

// stop stops the instance: watch, gRPC, cache, connection.
func (in *instance) stop() {
	in.stopOnce.Do(func() {
		if in.cancel != nil {
			in.cancel()
			<-in.done
		}
		if in.cc != nil {
			in.cc.Close()
		}
		if in.grpc != nil {
			in.grpc.Stop()
		}
		if in.store != nil {
			in.store.Close()
		}
		if in.conn != nil {
			in.conn.Close()
		}
	})
}

// codeByName maps a denial body's code back to its authz.Code.
var codeByName = func() map[string]authz.Code {
	m := map[string]authz.Code{}
	for _, c := range authz.Codes {
		m[c.String()] = c
	}
	return m
}()

// check asks the instance over gRPC about key on the API surface.
func (in *instance) check(ctx context.Context, key string) (authz.Code, error) {
	resp, err := in.client.Check(ctx, checkRequest(key))
	if err != nil {
		return authz.CodeUnavailable, err
	}
	return codeOf(resp)
}

func checkRequest(key string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/v1/things", Headers: map[string]string{authz.HeaderAPIKey: key},
		}},
	}}
}

// codeOf reads the decision of a response, checking that its parts agree.
func codeOf(resp *authv3.CheckResponse) (authz.Code, error) {
	if resp.GetStatus() == nil {
		return authz.CodeUnavailable, fmt.Errorf("response without a status")
	}
	if resp.GetStatus().GetCode() == 0 {
		if resp.GetOkResponse() == nil {
			return authz.CodeUnavailable, fmt.Errorf("OK status without an OK response")
		}
		return authz.CodeOK, nil
	}
	d := resp.GetDeniedResponse()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
		return authz.CodeUnavailable, fmt.Errorf("denial body %q: %w", d.GetBody(), err)
	}
	c, ok := codeByName[body.Error.Code]
	if !ok || c == authz.CodeOK || int(d.GetStatus().GetCode()) != c.Status() {
		return authz.CodeUnavailable, fmt.Errorf("denial %q with status %d", body.Error.Code, d.GetStatus().GetCode())
	}
	return c, nil
}

// freshness is the staleness gate: states are fresh while the watch is live,
// and for max after it was last seen live (or last applied something).
// Before the first sync nothing is fresh.
type freshness struct {
	watcher  *events.Watcher
	conn     *events.Conn
	max      time.Duration
	lastLive atomic.Int64
}

func (f *freshness) Fresh() bool {
	now := time.Now()
	if f.watcher.Synced() {
		f.lastLive.Store(now.UnixNano())
		return true
	}
	last := f.lastLive.Load()
	if last == 0 {
		return false // never synced
	}
	if a := f.watcher.LastActivity(); !a.IsZero() {
		last = max(last, a.UnixNano())
	}
	return now.Sub(time.Unix(0, last)) < f.max
}
