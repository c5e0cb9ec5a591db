package server

import (
	"context"
	"net/http"
)

// Close stops serving gracefully within the shutdown timeout: health turns
// NOT_SERVING first, Check and HTTP calls in flight are answered, then the
// watch stops and NATS is drained. It is safe on a partly started server
// and more than once; later calls return at once.
func (a *Server) Close() {
	if !a.closing.CompareAndSwap(false, true) {
		return
	}
	a.stopping.Store(true)
	if a.health != nil {
		a.setServing(false)
	}
	if a.stopHealth != nil {
		a.stopHealth()
		<-a.healthDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if a.grpc != nil {
		a.stopGRPC(ctx)
	}
	for _, s := range []*http.Server{a.http, a.admin} {
		if s != nil {
			_ = s.Shutdown(ctx)
		}
	}
	if a.engine != nil {
		a.engine.FlushLogs(ctx) // the counts of rate-limited lines still held back
	}
	a.usage.stop() // its last summaries need NATS
	if a.nats != nil {
		a.nats.close()
	}
	if a.store != nil {
		a.store.Close()
	}
}
