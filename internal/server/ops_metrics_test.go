package server

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

// TestMetricsFollowDecisions scrapes /metrics while decisions are made.
func TestMetricsFollowDecisions(t *testing.T) {
	s := startServer(t)
	conn := dialGRPC(t, s.addr("grpc"), nil)
	s.put(t, "sk_live_metrics_ok", "key_m_ok", "acct_m", "5.00", authz.StateActive)
	s.put(t, "sk_live_metrics_rev", "key_m_rev", "acct_m", "5.00", authz.StateRevoked)
	testkit.Eventually(t, 15*time.Second, "key allowed", func() bool {
		code, _, err := checkCode(t, conn, "sk_live_metrics_ok", "")
		return err == nil && code == 200
	})
	before := scrapeMetrics(t, s)
	for range 3 {
		checkCode(t, conn, "sk_live_metrics_ok", "")
	}
	checkCode(t, conn, "sk_live_metrics_rev", "")
	checkCode(t, conn, "not-a-key", "")
	testkit.Eventually(t, 15*time.Second, "the key index trusted", func() bool {
		return !s.app.nats.watcher.MayExist(authz.APIKey("sk_live_metrics_unknown").Hash())
	})
	checkCode(t, conn, "sk_live_metrics_unknown", "")
	after := scrapeMetrics(t, s)

	tests := []struct {
		series string
		delta  float64
	}{
		{`footstep_authz_decisions_total{code="ok",surface="api"}`, 3},
		{`footstep_authz_decisions_total{code="key_revoked",surface="api"}`, 1},
		{`footstep_authz_decisions_total{code="invalid_key_format",surface="api"}`, 1},
		{`footstep_authz_decisions_total{code="invalid_api_key",surface="api"}`, 1},
		{`footstep_authz_decisions_total{code="authz_unavailable",surface="api"}`, 0},
		{`footstep_authz_decision_duration_seconds_count`, 6},
		// The unknown key is ruled out by the watcher's index: no lookup.
		{`footstep_authz_kv_lookups_total{kind="key",result="absent"}`, 0},
		{`footstep_authz_cache_unknown_total{table="key"}`, 1},
	}
	for _, tt := range tests {
		if got := number(t, after, tt.series) - number(t, before, tt.series); got != tt.delta {
			t.Errorf("%s went up by %v; want %v", tt.series, got, tt.delta)
		}
	}
	series := `footstep_authz_cache_hits_total{table="key"}`
	if hits := number(t, after, series) - number(t, before, series); hits < 3 {
		t.Errorf("key cache hits went up by %v; want at least 3 (the allowed key, cached)", hits)
	}
	for _, series := range []string{"footstep_authz_nats_connected", "footstep_authz_watch_synced", "footstep_authz_ready"} {
		if v := number(t, after, series); v != 1 {
			t.Errorf("%s = %v; want 1", series, v)
		}
	}
	if n := number(t, after, "footstep_authz_change_lag_seconds_count"); n < 4 {
		t.Errorf("change lag observations = %v; want one per change written (4)", n)
	}
	for _, secret := range []string{"sk_live_metrics", authz.APIKey("sk_live_metrics_ok").Hash().String(), "key_m_ok"} {
		if strings.Contains(after, secret) {
			t.Errorf("/metrics holds %q", secret)
		}
	}
}

// number returns the value of series in a scrape, failing when absent.
func number(tb testing.TB, scrape, series string) float64 {
	tb.Helper()
	v := metricValue(scrape, series)
	if v == "" {
		tb.Fatalf("%s not in /metrics", series)
	}
	var f float64
	if err := json.Unmarshal([]byte(v), &f); err != nil {
		tb.Fatalf("%s = %q: %v", series, v, err)
	}
	return f
}

// TestShadowModeAllowsAndReports: shadow mode lets a revoked key through,
// tells the upstream why it would have been denied, and counts it.
func TestShadowModeAllowsAndReports(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Mode, c.Version = ModeShadow, "v0.0.0-test" })
	conn := dialGRPC(t, s.addr("grpc"), nil)
	s.put(t, "sk_live_shadow_rev", "key_sh_rev", "acct_sh", "5.00", authz.StateRevoked)
	testkit.Eventually(t, 15*time.Second, "revocation applied", func() bool {
		_, v, _ := checkCode(t, conn, "sk_live_shadow_rev", envoy.HeaderShadow)
		return v == "key_revoked"
	})
	code, shadow, err := checkCode(t, conn, "sk_live_shadow_rev", envoy.HeaderShadow)
	if err != nil || code != 200 || shadow != "key_revoked" {
		t.Errorf("revoked key in shadow mode = %d, %s %q, %v; want 200 with %q", code, envoy.HeaderShadow, shadow, err, "key_revoked")
	}
	code, shadow, _ = checkCode(t, conn, "bad key", envoy.HeaderShadow)
	if code != 200 || shadow != "invalid_key_format" {
		t.Errorf("malformed key in shadow mode = %d, %q; want 200, invalid_key_format", code, shadow)
	}
	m := scrapeMetrics(t, s)
	if v := number(t, m, `footstep_authz_shadow_allowed_total{code="key_revoked",surface="api"}`); v < 2 {
		t.Errorf("shadow_allowed_total{key_revoked} = %v; want at least 2", v)
	}
	if v := metricValue(m, `footstep_authz_info{mode="shadow",stale_policy="deny",version="v0.0.0-test"}`); v != "1" {
		t.Errorf("info metric does not say shadow: %q", v)
	}
	if !strings.Contains(s.logs.String(), `"code":"key_revoked"`) {
		t.Error("no log line reports the shadowed denial")
	}
}

// TestDashboardQueriesExist checks that every metric the Grafana dashboard
// queries is on a real /metrics scrape.
func TestDashboardQueriesExist(t *testing.T) {
	raw, err := os.ReadFile("../../grafana/footstep-authz.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	exprs := collectExprs(dash)
	if len(exprs) < 6 {
		t.Fatalf("dashboard has %d queries; want panels for decisions, latency, cache, revocation delay, NATS and staleness", len(exprs))
	}
	exposed := exposedMetrics(scrapeMetrics(t, startServer(t)))
	name := regexp.MustCompile(`footstep_authz_[a-z0-9_]+`)
	for _, expr := range exprs {
		for _, m := range name.FindAllString(expr, -1) {
			if !exposed[m] {
				t.Errorf("dashboard queries %s, which /metrics does not expose (in %q)", m, expr)
			}
		}
	}
}

// collectExprs returns every "expr" string in a decoded dashboard.
func collectExprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, collectExprs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, collectExprs(x)...)
		}
	}
	slices.Sort(out)
	return out
}

// exposedMetrics returns the series names in a scrape, histogram and summary
// suffixes included.
func exposedMetrics(scrape string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(scrape, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n, _, _ := strings.Cut(line, " ")
		n, _, _ = strings.Cut(n, "{")
		names[n] = true
	}
	return names
}
