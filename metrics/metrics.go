package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
)

// Namespace starts the name of every metric of footstep-authz.
const Namespace = "footstep_authz"

var _ envoy.Observer = (*Metrics)(nil)

// Config describes the process for the info metric. Every field is optional.
type Config struct {
	// Mode is "enforce" or "shadow".
	Mode string
	// StalePolicy is "deny" or "serve".
	StalePolicy string
	// Version is the build's version.
	Version string
}

// Metrics holds every metric of footstep-authz in its own registry. Build it
// with New.
type Metrics struct {
	reg *prometheus.Registry

	decisions [numCodes][numSurfaces]prometheus.Counter
	shadowed  [numCodes][numSurfaces]prometheus.Counter
	latency   prometheus.Histogram

	lookups       *prometheus.CounterVec
	lookupLatency *prometheus.HistogramVec

	changes    prometheus.Counter
	changeLag  prometheus.Histogram
	badRecords prometheus.Counter
	refused    prometheus.Counter
	resyncs    prometheus.Counter
	stalls     prometheus.Counter

	exposures *prometheus.CounterVec
	inFlight  prometheus.Gauge

	expiries         prometheus.Counter
	usagePublished   prometheus.Counter
	usageOverflow    prometheus.Counter
	usageStoreFailed prometheus.Counter
}

// Sizes of the decision tables, indexed by authz.Code and authz.Surface.
const (
	numCodes    = int(authz.CodeOK) + 1
	numSurfaces = int(authz.SurfaceMCP) + 1
)

// New returns a Metrics whose registry also holds the Go runtime and process
// collectors. Every labelled series starts at zero, so that rates and the
// dashboard work before the first event.
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.newDecisionMetrics()
	m.newLookupMetrics()
	m.newWatchMetrics()
	m.newMiscMetrics(cfg)
	m.newExpiryUsageMetrics()
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) newMiscMetrics(cfg Config) {
	m.exposures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "exposure_events_total",
		Help: "Keys seen in a query string and known: published as exposure events, suppressed as repeats within the dedupe interval, or failed to publish.",
	}, []string{"result"})
	for _, r := range []string{ExposurePublished, ExposureSuppressed, ExposureFailed} {
		m.exposures.WithLabelValues(r)
	}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "checks_in_flight",
		Help: "ext_authz Check calls being answered now.",
	})
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "info",
		Help:        "Always 1; labels tell the mode (enforce or shadow), the staleness policy and the version.",
		ConstLabels: prometheus.Labels{"mode": cfg.Mode, "stale_policy": cfg.StalePolicy, "version": cfg.Version},
	})
	info.Set(1)
	m.reg.MustRegister(m.exposures, m.inFlight, info)
}

// Results of an exposure report, the values of the result label of
// footstep_authz_exposure_events_total.
const (
	ExposurePublished  = "published"
	ExposureSuppressed = "suppressed"
	ExposureFailed     = "failed"
)

// ExposureReported counts one report of a leaked key: published, suppressed
// as a repeat, or failed (err set).
func (m *Metrics) ExposureReported(published bool, err error) {
	switch {
	case err != nil:
		m.exposures.WithLabelValues(ExposureFailed).Inc()
	case published:
		m.exposures.WithLabelValues(ExposurePublished).Inc()
	default:
		m.exposures.WithLabelValues(ExposureSuppressed).Inc()
	}
}

// CheckStarted counts a Check call in flight until the returned func is
// called.
func (m *Metrics) CheckStarted() (done func()) {
	m.inFlight.Inc()
	return m.inFlight.Dec
}
