package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthInterval is how often readiness and staleness are re-evaluated.
const healthInterval = 250 * time.Millisecond

// healthServices are the grpc.health.v1 service names kept in step: the
// server as a whole and the ext_authz service.
var healthServices = []string{"", authv3.Authorization_ServiceDesc.ServiceName}

// ready reports whether this replica should receive requests: the first sync
// with the bucket is done (the watch caught up and JetStream proved it
// current; the key index may still be building in the background), it is
// not stopping, and the watch is live (with --stale-policy deny; see
// staleness for the grace and for serve).
func (a *Server) ready() bool {
	return !a.stopping.Load() && a.nats.initialSynced() && !a.staleness.blocksReadiness()
}

// notReadyReason says why ready is false, for /readyz.
func (a *Server) notReadyReason() string {
	switch {
	case a.stopping.Load():
		return "stopping"
	case !a.nats.initialSynced():
		return "first sync with the key-value bucket not complete"
	case a.staleness.Stale():
		return fmt.Sprintf("key states stale: not confirmed current by JetStream for %s, beyond --max-staleness %s; answering 503 (--stale-policy deny)",
			a.staleness.Age().Round(time.Second), a.cfg.MaxStaleness)
	default:
		return fmt.Sprintf("key states not confirmed current by JetStream for %s; serving cached key states until --max-staleness %s (--stale-policy deny)",
			a.staleness.Age().Round(time.Second), a.cfg.MaxStaleness)
	}
}

func (a *Server) setServing(serving bool) {
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		status = healthpb.HealthCheckResponse_SERVING
	}
	for _, s := range healthServices {
		a.health.SetServingStatus(s, status)
	}
}

// trackHealth keeps staleness and grpc.health.v1 in step with the watch,
// and a derived memory limit with the key index, until ctx ends.
func (a *Server) trackHealth(ctx context.Context) {
	defer close(a.healthDone)
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	serving, stale := false, false
	synced := a.nats.watcher.Ready()
	for {
		a.staleness.update()
		if a.memoryLimit != nil {
			a.memoryLimit.follow(a.nats.watcher.IndexBytes())
		}
		if now := a.staleness.Stale(); now != stale {
			stale = now
			a.log.Warn("key states stale", "stale", stale, "policy", a.cfg.StalePolicy, "max_staleness", a.cfg.MaxStaleness.String())
		}
		if now := a.ready(); now != serving && !a.stopping.Load() {
			serving = now
			a.setServing(serving)
			a.log.Info("readiness changed", "ready", serving)
		}
		select {
		case <-ctx.Done():
			return
		case <-synced:
			synced = nil // closed: re-evaluate at once, once
		case <-t.C:
		}
	}
}

func (a *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready() {
			http.Error(w, "not ready: "+a.notReadyReason(), http.StatusServiceUnavailable)
			return
		}
		if a.staleness.Stale() {
			fmt.Fprintf(w, "ready: serving stale key states (not confirmed current by JetStream for %s; --stale-policy serve)\n", a.staleness.Age().Round(time.Second))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", a.metrics.Handler())
	if a.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
