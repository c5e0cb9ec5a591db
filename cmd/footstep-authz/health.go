package main

import (
	"context"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthInterval is how often readiness is re-evaluated after the first sync.
const healthInterval = 250 * time.Millisecond

// healthServices are the grpc.health.v1 service names kept in step: the
// server as a whole and the ext_authz service.
var healthServices = []string{"", authv3.Authorization_ServiceDesc.ServiceName}

// ready reports whether decisions can be trusted: the first complete sync
// with the bucket is done and the watch is live.
func (a *app) ready() bool {
	return a.nats.synced()
}

func (a *app) setServing(serving bool) {
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		status = healthpb.HealthCheckResponse_SERVING
	}
	for _, s := range healthServices {
		a.health.SetServingStatus(s, status)
	}
}

// trackHealth keeps grpc.health.v1 in step with readiness until ctx ends.
func (a *app) trackHealth(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-a.nats.watcher.Ready():
	}
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	serving := false
	for {
		if now := a.ready(); now != serving {
			serving = now
			a.setServing(serving)
			a.log.Info("readiness changed", "ready", serving)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready() {
			http.Error(w, "not ready: key-value watch not synced", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}
