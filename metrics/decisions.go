package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
)

// checkBuckets spans an in-memory answer (tens of microseconds) to a miss
// that waited on a slow key-value lookup.
var checkBuckets = []float64{.000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

func (m *Metrics) newDecisionMetrics() {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "decisions_total",
		Help: "Authorization decisions by code (ok or the denial code the rules gave) and surface (api or mcp). In shadow mode denials are counted here too, and also in shadow_allowed_total.",
	}, []string{"code", "surface"})
	shadowed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "shadow_allowed_total",
		Help: "Requests that shadow mode allowed although enforcement would have denied them, by the denial code and surface.",
	}, []string{"code", "surface"})
	for _, c := range authz.Codes {
		for s := range numSurfaces {
			surface := authz.Surface(s).String()
			m.decisions[c][s] = decisions.WithLabelValues(c.String(), surface)
			m.shadowed[c][s] = shadowed.WithLabelValues(c.String(), surface)
		}
	}
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "decision_duration_seconds",
		Help:    "Time to decide one request: credential extraction, cache lookups and, on a miss, the key-value lookup.",
		Buckets: checkBuckets,
	})
	m.reg.MustRegister(decisions, shadowed, m.latency)
}

// Decided counts one decision and its latency; it implements envoy.Observer.
// It holds no lock and allocates nothing.
func (m *Metrics) Decided(r *envoy.Result, elapsed time.Duration) {
	c, s := int(r.Code), int(r.Surface)
	if c >= numCodes || s >= numSurfaces {
		c, s = int(authz.CodeUnavailable), int(authz.SurfaceAPI)
	}
	m.decisions[c][s].Inc()
	if r.Shadow && r.Code != authz.CodeOK {
		m.shadowed[c][s].Inc()
	}
	if r.Expired {
		m.expiries.Inc()
	}
	m.latency.Observe(elapsed.Seconds())
}
