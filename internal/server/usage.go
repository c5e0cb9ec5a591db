package server

import (
	"context"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/metrics"
)

// decisionObserver is the engine's observer: the metrics, and key usage
// when tracking is on. Usage costs one short shard lock per check of a
// known key; publishing runs in the recorder's own goroutine.
type decisionObserver struct {
	metrics *metrics.Metrics
	usage   *events.UsageRecorder // nil when usage tracking is off
}

var _ envoy.Observer = (*decisionObserver)(nil)

func (o *decisionObserver) Decided(r *envoy.Result, elapsed time.Duration) {
	o.metrics.Decided(r, elapsed)
	if o.usage != nil && r.Key.KeyID != "" {
		o.usage.Record(r.KeyHash, r.Key, r.Code, r.At)
	}
}

// usageTracking is the running usage recorder.
type usageTracking struct {
	recorder *events.UsageRecorder
	cancel   context.CancelFunc
	done     chan struct{}
}

// startUsage starts recording key usage when the configuration asks for it;
// it returns nil when tracking is off. The usage bucket is opened at the
// first flush, so that a bucket NATS cannot create yet delays no start.
func (a *Server) startUsage() (*usageTracking, error) {
	cfg := a.cfg
	if !cfg.UsageTracking {
		return nil, nil
	}
	replica := cfg.Replica
	if replica == "" {
		replica, _ = os.Hostname()
	}
	js := a.nats.conn.JetStream()
	rec, err := events.NewUsageRecorder(events.UsageConfig{
		NATS: a.nats.conn.NATS(), Replica: replica, MaxKeys: cfg.UsageMaxKeys, Interval: cfg.UsageInterval,
		OpenBucket: func(ctx context.Context) (jetstream.KeyValue, error) {
			return events.OpenUsageBucket(ctx, js, cfg.UsageBucket, cfg.KVReplicas)
		},
		Observer: a.metrics.UsageObserver(), Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &usageTracking{recorder: rec, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		rec.Run(ctx)
	}()
	return u, nil
}

// stop publishes what is left and stops the recorder; safe on nil.
func (u *usageTracking) stop() {
	if u == nil {
		return
	}
	u.cancel()
	<-u.done
}

// recorderOrNil returns the recorder, nil when tracking is off.
func (u *usageTracking) recorderOrNil() *events.UsageRecorder {
	if u == nil {
		return nil
	}
	return u.recorder
}
