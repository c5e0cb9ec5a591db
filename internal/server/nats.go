package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/events"
)

// natsLink is everything footstep-authz holds of NATS: the embedded server
// when there is one, the connection, the bucket and the watch.
type natsLink struct {
	log       *slog.Logger
	embedded  *events.Embedded
	conn      *events.Conn
	kv        jetstream.KeyValue
	loader    *events.Loader
	publisher *events.Publisher
	exposures *exposureReporter
	watcher   *events.Watcher
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// connectNATS starts the embedded server when no URL is given, connects and
// opens the bucket, creating it when missing.
// Exposure events published (or not) are told to counted.
func connectNATS(ctx context.Context, cfg Config, log *slog.Logger, counted func(published bool, err error)) (_ *natsLink, err error) {
	n := &natsLink{log: log}
	defer func() {
		if err != nil {
			n.close() // n, not the nil that a failure returns
		}
	}()
	connCfg := cfg.NATS
	connCfg.Logger = log
	if cfg.NATSURL == "" {
		dir, err := filepath.Abs(cfg.EmbeddedNATSDir)
		if err != nil {
			return nil, fmt.Errorf("--embedded-nats-dir: %w", err)
		}
		n.embedded, err = events.StartEmbedded(events.EmbeddedConfig{Addr: cfg.EmbeddedNATSAddr, Dir: dir})
		if err != nil {
			return nil, err
		}
		connCfg.URLs = []string{n.embedded.ClientURL()}
		log.Info("embedded NATS server started", "url", n.embedded.ClientURL(), "dir", dir)
	}
	if n.conn, err = events.Connect(ctx, connCfg); err != nil {
		return nil, err
	}
	n.kv, err = events.OpenBucket(ctx, n.conn.JetStream(), events.BucketConfig{Name: cfg.KVBucket, Replicas: cfg.KVReplicas, Logger: log})
	if err != nil {
		return nil, err
	}
	n.loader = events.NewLoader(n.kv, events.ReadFromLeader(n.conn.NATS()))
	n.publisher = events.NewPublisher(n.conn.JetStream(), n.kv)
	n.exposures = &exposureReporter{p: events.NewExposurePublisher(n.conn.NATS(), events.ExposureConfig{}), log: log, counted: counted}
	return n, nil
}

// exposureReporter publishes exposure events, counts them and logs what
// fails to publish.
type exposureReporter struct {
	p       *events.ExposurePublisher
	log     *slog.Logger
	counted func(published bool, err error)
}

func (r *exposureReporter) ReportExposure(ctx context.Context, h authz.KeyHash, rec authz.KeyRecord) {
	published, err := r.p.ReportExposure(ctx, h, rec)
	if r.counted != nil {
		r.counted(published, err)
	}
	if err != nil {
		r.log.WarnContext(ctx, "publish key exposure", "key_hash", h.String(), "key_id", rec.KeyID, "error", err)
	}
}

// The cache starts empty at the bucket's current revision and forgets keys
// on the watcher's word, so the watcher starts lazily (events/build.go).
var _ events.LazySink = (*cache.Store)(nil)

// watch starts applying the bucket's changes to sink, configured by cfg.
func (n *natsLink) watch(sink events.Sink, cfg events.WatcherConfig) error {
	var err error
	n.watcher, err = events.NewWatcher(n.conn, n.kv, sink, cfg)
	if err != nil {
		return err
	}
	n.loader.UseIndex(n.watcher) // misses learn of revocations from the watch, without a second read
	ctx, cancel := context.WithCancel(context.Background())
	n.stopWatch, n.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(n.watchDone)
		if err := n.watcher.Run(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("key-value watch stopped", "error", err)
		}
	}()
	return nil
}

// synced reports whether the watch has completed its first sync and is live.
func (n *natsLink) synced() bool {
	return n.watcher != nil && n.watcher.Synced() && n.conn.Connected()
}

// initialSynced reports whether the watch has completed its first full sync.
func (n *natsLink) initialSynced() bool {
	if n.watcher == nil {
		return false
	}
	select {
	case <-n.watcher.Ready():
		return true
	default:
		return false
	}
}

// MayExist answers for the watcher's index of existing keys: a key that
// certainly has no record is answered from memory. Before the watch exists
// (it is created right after the cache) every key may exist.
func (n *natsLink) MayExist(h authz.KeyHash) bool {
	return n.watcher == nil || n.watcher.MayExist(h)
}

// close stops the watch, drains the connection and stops the embedded server.
func (n *natsLink) close() {
	if n.stopWatch != nil {
		n.stopWatch()
		<-n.watchDone
	}
	switch {
	case n.conn == nil:
	case n.conn.Connected():
		n.conn.Close() // drain: finish what is in flight
	default:
		n.conn.NATS().Close() // nothing to drain to; do not wait out the drain timeout
	}
	if n.embedded != nil {
		n.embedded.Shutdown()
	}
}
