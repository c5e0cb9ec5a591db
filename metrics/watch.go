package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/footstep/authz/events"
)

// lagBuckets span a change applied on loopback (a fraction of a millisecond)
// to one that waited out a reconnect or a stalled watch.
var lagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

func (m *Metrics) newWatchMetrics() {
	m.changes = counter("watch_changes_applied_total", "Changes from the bucket's watch applied to the cache after the initial replay.")
	m.badRecords = counter("watch_bad_records_total", "Records from the watch that do not decode; their keys fail closed (503).")
	m.refused = counter("watch_refused_total", "Puts from the watch refused because they would revive a revoked key.")
	m.resyncs = counter("watch_resyncs_total", "Full resyncs: the cache was reset because the bucket was recreated or purged.")
	m.stalls = counter("watch_stalls_total", "Times the watch was lost and had to be re-created.")
	m.changeLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "change_lag_seconds",
		Help:    "Time from a change's write to the bucket (its KV timestamp) to its application in this replica's cache: the revocation delay. Includes clock skew between NATS and this host.",
		Buckets: lagBuckets,
	})
	m.reg.MustRegister(m.changes, m.badRecords, m.refused, m.resyncs, m.stalls, m.changeLag)
}

// WatchObserver returns the hooks that feed the watch metrics, for
// events.WatcherConfig.Observer. They never block.
func (m *Metrics) WatchObserver() events.WatchObserver {
	return events.WatchObserver{
		Applied: func(lag time.Duration) {
			m.changes.Inc()
			m.changeLag.Observe(max(lag, 0).Seconds())
		},
		BadRecord: m.badRecords.Inc,
		Refused:   m.refused.Inc,
		Resync:    m.resyncs.Inc,
		Stall:     m.stalls.Inc,
	}
}

// Sources are read at every scrape. Nil fields export nothing.
type Sources struct {
	// Cache gives the cache's counters (a *cache.Store).
	Cache CacheStats
	// Connected reports whether the NATS connection is up.
	Connected func() bool
	// Synced reports whether the watch has completed its first sync and is
	// caught up and connected.
	Synced func() bool
	// LastActivity returns when the watch last applied a change or was last
	// (re)created; zero before either.
	LastActivity func() time.Time
	// Staleness returns how long the cached state has gone without a live
	// watch: zero while synced.
	Staleness func() time.Duration
	// Stale reports whether Staleness is beyond the limit (--max-staleness).
	Stale func() bool
	// Ready reports whether the process reports itself ready.
	Ready func() bool
	// BehindReads returns how many key-value reads came back older than a
	// change the watch had applied, each read again.
	BehindReads func() uint64
	// IndexedKeys returns how many keys the watcher's index holds and
	// whether it is complete (it is built in the background after a start).
	IndexedKeys func() (n int, complete bool)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Observe registers the metrics read from src at every scrape. Call it once.
func (m *Metrics) Observe(src Sources) error {
	if src.Now == nil {
		src.Now = time.Now
	}
	var cs []prometheus.Collector
	if src.Cache != nil {
		cs = append(cs, newCacheCollector(src.Cache))
	}
	cs = append(cs, boolGauge("nats_connected", "1 while the NATS connection is up.", src.Connected),
		boolGauge("watch_synced", "1 while the bucket's watch has completed its first sync and is caught up and connected.", src.Synced),
		boolGauge("stale", "1 while the cached state is older than --max-staleness: with --stale-policy=deny every lookup answers 503, with serve it is served anyway. Alert on it.", src.Stale),
		boolGauge("ready", "1 while /readyz and grpc.health.v1 report ready (SERVING).", src.Ready))
	if src.Staleness != nil {
		cs = append(cs, gaugeFunc("staleness_seconds", "Seconds since the watch was last synced and connected; 0 while it is.",
			func() float64 { return src.Staleness().Seconds() }))
	}
	if src.LastActivity != nil {
		cs = append(cs, gaugeFunc("watch_last_activity_age_seconds",
			"Seconds since the watch last applied a change or was (re)created; grows while the bucket is quiet, so read it with watch_synced.",
			func() float64 { return ageSeconds(src.LastActivity(), src.Now()) }))
	}
	if src.BehindReads != nil {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "kv_reads_behind_watch_total",
			Help: "Key-value reads on cache misses that answered a state older than the watch had applied (a stream leader being replaced, say); each is read again, and the request fails closed if none catches up in time.",
		}, func() float64 { return float64(src.BehindReads()) }))
	}
	if src.IndexedKeys != nil {
		cs = append(cs,
			boolGauge("watch_index_complete", "1 once the watcher's index of existing keys is complete (built in the background after a start or a resync); until then every miss is read from the bucket.",
				func() bool { _, complete := src.IndexedKeys(); return complete }),
			gaugeFunc("watch_indexed_keys", "Keys in the watcher's index of existing keys.",
				func() float64 { n, _ := src.IndexedKeys(); return float64(n) }))
	}
	for _, c := range cs {
		if c == nil {
			continue
		}
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func ageSeconds(at, now time.Time) float64 {
	if at.IsZero() {
		return 0
	}
	return max(now.Sub(at), 0).Seconds()
}

// counter returns a counter of the Namespace.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
}

func gaugeFunc(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f)
}

// boolGauge returns a gauge of 1 or 0, or nil when f is nil.
func boolGauge(name, help string, f func() bool) prometheus.Collector {
	if f == nil {
		return nil
	}
	return gaugeFunc(name, help, func() float64 {
		if f() {
			return 1
		}
		return 0
	})
}
