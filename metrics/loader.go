package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/events"
)

// Results of a key-value lookup, the values of the result label.
const (
	LookupFound     = "found"
	LookupAbsent    = "absent"
	LookupBadRecord = "bad_record"
	LookupError     = "error"
)

// Kinds of record looked up, the values of the kind label.
const (
	KindKey     = "key"
	KindAccount = "account"
)

var lookupBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

func (m *Metrics) newLookupMetrics() {
	m.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "kv_lookups_total",
		Help: "Key-value lookups made on cache misses, by kind (key or account) and result (found, absent, bad_record, error).",
	}, []string{"kind", "result"})
	m.lookupLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "kv_lookup_duration_seconds",
		Help:    "Time of one key-value lookup on a cache miss, by kind.",
		Buckets: lookupBuckets,
	}, []string{"kind"})
	for _, k := range []string{KindKey, KindAccount} {
		m.lookupLatency.WithLabelValues(k)
		for _, r := range []string{LookupFound, LookupAbsent, LookupBadRecord, LookupError} {
			m.lookups.WithLabelValues(k, r)
		}
	}
	m.reg.MustRegister(m.lookups, m.lookupLatency)
}

// Loader returns next, counting and timing each of its lookups.
func (m *Metrics) Loader(next cache.Loader) cache.Loader {
	return &timedLoader{next: next, m: m}
}

type timedLoader struct {
	next cache.Loader
	m    *Metrics
}

func (l *timedLoader) LoadKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	start := time.Now()
	e, err := l.next.LoadKey(ctx, h)
	l.m.lookedUp(KindKey, time.Since(start), e.Presence, err)
	return e, err
}

func (l *timedLoader) LoadAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	start := time.Now()
	e, err := l.next.LoadAccount(ctx, id)
	l.m.lookedUp(KindAccount, time.Since(start), e.Presence, err)
	return e, err
}

func (m *Metrics) lookedUp(kind string, d time.Duration, p authz.Presence, err error) {
	m.lookupLatency.WithLabelValues(kind).Observe(d.Seconds())
	m.lookups.WithLabelValues(kind, lookupResult(p, err)).Inc()
}

func lookupResult(p authz.Presence, err error) string {
	switch {
	case errors.Is(err, events.ErrBadRecord):
		return LookupBadRecord
	case err != nil:
		return LookupError
	case p == authz.Absent:
		return LookupAbsent
	default:
		return LookupFound
	}
}
