package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
)

// keepaliveMinTime is the shortest interval between client pings that the
// gRPC server accepts; Envoy's connection_keepalive interval must not be
// shorter (envoy/envoy.yaml uses 30 s).
const keepaliveMinTime = 10 * time.Second

// app is a started footstep-authz: every listener bound, the watch running.
type app struct {
	cfg      *config
	log      *slog.Logger
	nats     *natsLink
	store    *cache.Store
	health   *health.Server
	grpc     *grpc.Server
	http     *http.Server // nil when --http-addr is empty
	admin    *http.Server
	addrs    map[string]net.Addr // bound addresses by flag name, for tests
	serveErr chan error
}

// start connects to NATS, binds every listener and starts serving. What it
// started is stopped again when it fails.
func start(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer) (a *app, err error) {
	a = &app{cfg: cfg, log: log, addrs: map[string]net.Addr{}, serveErr: make(chan error, 3)}
	defer func() {
		if err != nil {
			a.stop()
		}
	}()
	if a.nats, err = connectNATS(ctx, cfg, log); err != nil {
		return nil, err
	}
	a.store, err = cache.New(cache.Config{
		Loader:      a.nats.store,
		MaxBytes:    int64(cfg.CacheSize),
		NegativeTTL: cfg.NegativeTTL,
		LoadTimeout: cfg.LookupTimeout,
	})
	if err != nil {
		return nil, err
	}
	if err := a.nats.watch(a.store); err != nil {
		return nil, err
	}
	if cfg.Demo {
		if err := seedDemo(ctx, a.nats.publisher, stdout); err != nil {
			return nil, err
		}
	}
	engine, err := envoy.NewEngine(envoy.EngineConfig{States: a.store, Exposures: a.nats.exposures, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := a.listen(engine); err != nil {
		return nil, err
	}
	go a.trackHealth(ctx)
	log.Info("footstep-authz started", "grpc_addr", a.addrs["grpc-addr"].String(), "admin_addr", a.addrs["admin-addr"].String(), "bucket", cfg.KVBucket)
	return a, nil
}

// listen binds the gRPC, HTTP and admin listeners and serves them.
func (a *app) listen(engine *envoy.Engine) error {
	srv, err := envoy.NewServer(engine, a.log)
	if err != nil {
		return err
	}
	a.health = health.NewServer()
	a.setServing(false)
	a.grpc = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
	)
	authv3.RegisterAuthorizationServer(a.grpc, srv)
	healthpb.RegisterHealthServer(a.grpc, a.health)
	if err := a.serve("grpc-addr", a.cfg.GRPCAddr, func(l net.Listener) error { return a.grpc.Serve(l) }); err != nil {
		return err
	}
	if a.cfg.HTTPAddr != "" {
		a.http = &http.Server{Handler: envoy.NewHTTPHandler(engine, a.log), ReadHeaderTimeout: 5 * time.Second}
		if err := a.serve("http-addr", a.cfg.HTTPAddr, a.http.Serve); err != nil {
			return err
		}
	}
	a.admin = &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	return a.serve("admin-addr", a.cfg.AdminAddr, a.admin.Serve)
}

func (a *app) serve(name, addr string, serve func(net.Listener) error) error {
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

// wait blocks until ctx ends or a server fails, then stops everything.
func (a *app) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		a.log.Info("stopping")
	case err = <-a.serveErr:
	}
	a.stop()
	return err
}

// stop stops serving gracefully within the shutdown timeout: health turns
// NOT_SERVING first, calls in flight finish, then NATS is drained.
func (a *app) stop() {
	if a.health != nil {
		a.setServing(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if a.grpc != nil {
		stopGRPC(ctx, a.grpc)
	}
	for _, s := range []*http.Server{a.http, a.admin} {
		if s != nil {
			_ = s.Shutdown(ctx)
		}
	}
	if a.nats != nil {
		a.nats.close()
	}
	if a.store != nil {
		a.store.Close()
	}
}

// stopGRPC waits for calls in flight until ctx ends, then cuts the rest.
func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}
