package server

import (
	"context"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/footstep/authz/envoy"
)

// keepaliveMinTime is the shortest interval between client pings that the
// gRPC server accepts; Envoy's connection_keepalive interval must not be
// shorter (envoy/envoy.yaml uses 30 s). Pings without calls in flight are
// allowed, since Envoy keeps idle connections to the server.
const keepaliveMinTime = 10 * time.Second

// drainPoll is how often a stop checks whether the calls in flight are done.
const drainPoll = 10 * time.Millisecond

// listenGRPC serves ext_authz and grpc.health.v1 on --grpc-addr, over TLS
// when configured.
func (a *Server) listenGRPC(engine *envoy.Engine) error {
	srv, err := envoy.NewServer(engine, a.log)
	if err != nil {
		return err
	}
	a.health = health.NewServer()
	a.setServing(false)
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(a.countChecks),
		envoy.ServerOption(),
	}
	if cfg := a.serverTLS(); cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	a.grpc = grpc.NewServer(opts...)
	srv.Register(a.grpc)
	healthpb.RegisterHealthServer(a.grpc, a.health)
	if a.cfg.GRPCReflection {
		reflection.Register(a.grpc)
	}
	return a.serve("grpc-addr", a.cfg.GRPCAddr, a.grpc.Serve)
}

// countChecks keeps count of the Check calls in flight, so that a stop can
// wait for them and for nothing else.
func (a *Server) countChecks(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if info.FullMethod != authv3.Authorization_Check_FullMethodName {
		return next(ctx, req)
	}
	a.inFlight.Add(1)
	done := a.metrics.CheckStarted()
	defer func() {
		done()
		a.inFlight.Add(-1)
	}()
	return next(ctx, req)
}

// stopGRPC stops accepting calls and waits until the Check calls in flight
// have been answered or ctx ends, then closes every connection. It does not
// wait for health Watch streams, which never end on their own.
func (a *Server) stopGRPC(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		a.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	idle := 0
	for idle < 2 { // twice in a row, so that a call racing the GOAWAY is seen
		select {
		case <-done:
			return
		case <-ctx.Done():
			a.log.Warn("shutdown timeout: cutting calls in flight", "in_flight", a.inFlight.Load())
			idle = 2
		case <-t.C:
			if a.inFlight.Load() == 0 {
				idle++
			} else {
				idle = 0
			}
		}
	}
	a.grpc.Stop()
	<-done
}
