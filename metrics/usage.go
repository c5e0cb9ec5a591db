package metrics

import "github.com/footstep/authz/events"

// newExpiryUsageMetrics registers the expiry and key usage metrics. They
// exist with usage tracking off too, at zero, so that the dashboard works.
func (m *Metrics) newExpiryUsageMetrics() {
	m.expiries = counter("key_expiries_total",
		"Checks answered key_revoked because the key's expires_at had passed (a revoked key is not counted here).")
	m.usagePublished = counter("usage_summaries_published_total",
		"Key usage summaries published on footstep.events.key_used (one per key per interval and replica).")
	m.usageOverflow = counter("usage_overflow_total",
		"Checks of keys that usage tracking did not record because it already tracked its maximum of keys in the interval.")
	m.usageStoreFailed = counter("usage_store_failures_total",
		"Key usage summaries that could not be merged into the usage bucket.")
	m.reg.MustRegister(m.expiries, m.usagePublished, m.usageOverflow, m.usageStoreFailed)
}

// UsageObserver returns the hooks that count what a UsageRecorder does.
func (m *Metrics) UsageObserver() events.UsageObserver {
	return events.UsageObserver{
		Published:   func(n int) { m.usagePublished.Add(float64(n)) },
		Overflow:    m.usageOverflow.Inc,
		StoreFailed: m.usageStoreFailed.Inc,
	}
}
