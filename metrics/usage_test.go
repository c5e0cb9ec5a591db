package metrics

import (
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
)

func TestExpiryAndUsageMetrics(t *testing.T) {
	m := New(Config{})
	m.Decided(&envoy.Result{Code: authz.CodeKeyRevoked, Expired: true}, time.Millisecond)
	m.Decided(&envoy.Result{Code: authz.CodeKeyRevoked}, time.Millisecond)
	o := m.UsageObserver()
	o.Published(3)
	o.Published(2)
	o.Overflow()
	o.StoreFailed()
	wantSamples(t, scrape(t, m), [][2]string{
		{"footstep_authz_key_expiries_total", "1"},
		{"footstep_authz_usage_summaries_published_total", "5"},
		{"footstep_authz_usage_overflow_total", "1"},
		{"footstep_authz_usage_store_failures_total", "1"},
	})
}
