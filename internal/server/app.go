package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/metrics"
)

// Server is a started footstep-authz: every listener bound, the watch
// running. Build it with New, serve with Run, stop with Close.
type Server struct {
	cfg         Config
	log         *slog.Logger
	metrics     *metrics.Metrics
	nats        *natsLink
	store       *cache.Store
	staleness   *staleness
	tls         *certFiles // nil without --tls-cert
	health      *health.Server
	grpc        *grpc.Server
	http        *http.Server // nil when --http-addr is empty
	admin       *http.Server
	addrs       map[string]net.Addr // bound addresses by flag name, for tests
	serveErr    chan error
	inFlight    atomic.Int64 // Check calls being answered
	stopping    atomic.Bool
	closing     atomic.Bool // Close has been called
	engine      *envoy.Engine
	usage       *usageTracking // nil when usage tracking is off
	memoryLimit *memoryLimit   // nil unless Config.DeriveMemoryLimit
	stopHealth  context.CancelFunc
	healthDone  chan struct{}
}

// New connects to NATS (starting the embedded server when no URL is given),
// opens the bucket, starts the watch, binds every listener and starts
// serving. What it started is stopped again when it fails. ctx bounds the
// start only; the server runs until Run returns or Close is called.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := cfg.Logger
	a := &Server{cfg: cfg, log: log, addrs: map[string]net.Addr{}, serveErr: make(chan error, 3), healthDone: make(chan struct{})}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.metrics = metrics.New(metrics.Config{Mode: cfg.Mode, StalePolicy: cfg.StalePolicy, Version: cfg.Version})
	if cfg.SetGCPercent {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if cfg.DeriveMemoryLimit {
		a.memoryLimit = newMemoryLimit(cfg.CacheSize, log)
	}
	if cfg.TLSCert != "" {
		if a.tls, err = newCertFiles(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA, log); err != nil {
			return nil, err
		}
	}
	if err := a.startState(ctx, cfg.Stdout); err != nil {
		return nil, err
	}
	if a.usage, err = a.startUsage(); err != nil {
		return nil, err
	}
	engine, err := a.newEngine()
	if err != nil {
		return nil, err
	}
	a.engine = engine
	if err := a.listen(engine); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopHealth = cancel
	go a.trackHealth(hctx)
	log.Info("footstep-authz started", "grpc_addr", a.addrs["grpc-addr"].String(), "http_addr", addrString(a.addrs["http-addr"]),
		"admin_addr", a.addrs["admin-addr"].String(),
		"bucket", cfg.KVBucket, "mode", cfg.Mode, "stale_policy", cfg.StalePolicy, "max_staleness", cfg.MaxStaleness.String(),
		"tls", a.tls != nil, "mtls", cfg.TLSClientCA != "")
	return a, nil
}

// startState connects to NATS, fills the cache from the bucket's watch and
// exports their metrics.
func (a *Server) startState(ctx context.Context, stdout io.Writer) (err error) {
	cfg := a.cfg
	if a.nats, err = connectNATS(ctx, cfg, a.log, a.metrics.ExposureReported); err != nil {
		return err
	}
	a.store, err = cache.New(cache.Config{
		Loader:            a.metrics.Loader(a.nats.loader),
		Membership:        a.nats,
		MaxBytes:          cfg.CacheSize,
		NegativeTTL:       cfg.NegativeTTL,
		LoadTimeout:       cfg.LookupTimeout,
		MaxLoadsPerSecond: cfg.LookupBudget,
	})
	if err != nil {
		return err
	}
	if err := a.nats.watch(a.store, events.WatcherConfig{Logger: a.log, Observer: a.metrics.WatchObserver(), BuildGate: cfg.buildGate}); err != nil {
		return err
	}
	a.staleness = newStaleness(cfg.MaxStaleness, cfg.StalePolicy, a.nats.watcher, time.Now)
	err = a.metrics.Observe(metrics.Sources{
		Cache: a.store, Connected: a.nats.conn.Connected, Synced: a.nats.synced,
		LastActivity: a.nats.watcher.LastActivity, Staleness: a.staleness.Age, Stale: a.staleness.Stale, Ready: a.ready,
		BehindReads: a.nats.loader.BehindReads, IndexedKeys: a.nats.watcher.IndexedKeys,
	})
	if err != nil {
		return err
	}
	if cfg.Demo {
		return seedDemo(ctx, a.nats.publisher, stdout)
	}
	return nil
}

func (a *Server) newEngine() (*envoy.Engine, error) {
	var states envoy.States = a.store
	if a.cfg.wrapStates != nil {
		states = a.cfg.wrapStates(states)
	}
	return envoy.NewEngine(envoy.EngineConfig{
		States:    states,
		Exposures: a.nats.exposures,
		Observer:  &decisionObserver{metrics: a.metrics, usage: a.usage.recorderOrNil()},
		Freshness: a.staleness,
		Shadow:    a.cfg.Mode == ModeShadow,
		Logger:    a.log,
		Now:       a.cfg.now,
	})
}

// listen binds the gRPC, HTTP and admin listeners and serves them.
func (a *Server) listen(engine *envoy.Engine) error {
	if err := a.listenGRPC(engine); err != nil {
		return err
	}
	if a.cfg.HTTPAddr != "" {
		a.http = &http.Server{Handler: envoy.NewHTTPHandler(engine, a.log, envoy.WithPathPrefix(a.cfg.HTTPPathPrefix)), ReadHeaderTimeout: 5 * time.Second}
		serve := a.http.Serve
		if a.tls != nil {
			a.http.TLSConfig = a.tls.serverConfig(httpProtos)
			serve = func(l net.Listener) error { return a.http.ServeTLS(l, "", "") }
		}
		if err := a.serve("http-addr", a.cfg.HTTPAddr, serve); err != nil {
			return err
		}
	}
	a.admin = &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	return a.serve("admin-addr", a.cfg.AdminAddr, a.admin.Serve)
}

func (a *Server) serve(name, addr string, serve func(net.Listener) error) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--%s: %w", name, err)
	}
	a.addrs[name] = l.Addr()
	go func() {
		if err := serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			a.serveErr <- fmt.Errorf("serve --%s: %w", name, err)
		}
	}()
	return nil
}

// serverTLS returns the TLS configuration of the gRPC port, nil without TLS.
func (a *Server) serverTLS() *tls.Config {
	if a.tls == nil {
		return nil
	}
	return a.tls.serverConfig(grpcProtos)
}

// Run blocks until ctx ends or a listener fails, then stops everything
// gracefully (see Close). It returns the listener's error, if any.
func (a *Server) Run(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		a.log.Info("stopping: draining calls in flight", "shutdown_timeout", a.cfg.ShutdownTimeout.String())
	case err = <-a.serveErr:
		a.log.Error("stopping: a server failed", "error", err)
	}
	a.Close()
	a.log.Info("stopped")
	return err
}

// Addr returns the bound address of a listener: "grpc", "http" or "admin";
// nil for one that is off.
func (a *Server) Addr(name string) net.Addr { return a.addrs[name+"-addr"] }

// Ready reports whether the server should receive requests (/readyz).
func (a *Server) Ready() bool { return a.ready() }

// addrString is the address of a listener, or "off" for one not started.
func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// Status is a snapshot of how current a Server is, for tests and tools.
type Status struct {
	Ready     bool      // /readyz would answer 200
	Synced    bool      // the watch completed its first sync, is caught up and connected
	Connected bool      // the NATS client connection is up
	Stale     bool      // older than MaxStaleness (the footstep_authz_stale alarm)
	FreshAt   time.Time // every change acknowledged before it has been applied
	Revision  uint64    // the last bucket revision applied
}

// Status returns the server's current Status.
func (a *Server) Status() Status {
	w := a.nats.watcher
	return Status{
		Ready: a.ready(), Synced: a.nats.synced(), Connected: a.nats.conn.Connected(), Stale: a.staleness.Stale(),
		FreshAt: w.FreshAt(), Revision: w.LastRevision(),
	}
}
