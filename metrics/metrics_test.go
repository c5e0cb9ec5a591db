package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// scrape returns the text exposition of m.
func scrape(tb testing.TB, m *Metrics) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// sample returns the value of the series named by line prefix series.
func sample(tb testing.TB, text, series string) string {
	tb.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	tb.Fatalf("series %s not in scrape", series)
	return ""
}

// wantSamples fails unless each series of want, named by line prefix, has
// its value in text.
func wantSamples(tb testing.TB, text string, want [][2]string) {
	tb.Helper()
	for _, w := range want {
		if got := sample(tb, text, w[0]); got != w[1] {
			tb.Errorf("%s = %s; want %s", w[0], got, w[1])
		}
	}
}

func TestDecided(t *testing.T) {
	m := New(Config{Mode: "shadow", StalePolicy: "deny"})
	m.Decided(&envoy.Result{Code: authz.CodeOK, Surface: authz.SurfaceAPI}, time.Millisecond)
	m.Decided(&envoy.Result{Code: authz.CodeKeyRevoked, Surface: authz.SurfaceMCP, Shadow: true}, time.Millisecond)
	m.Decided(&envoy.Result{Code: authz.CodeKeyRevoked, Surface: authz.SurfaceMCP}, time.Millisecond)
	wantSamples(t, scrape(t, m), [][2]string{
		{`footstep_authz_decisions_total{code="ok",surface="api"}`, "1"},
		{`footstep_authz_decisions_total{code="key_revoked",surface="mcp"}`, "2"},
		{`footstep_authz_decisions_total{code="authz_unavailable",surface="api"}`, "0"},
		{`footstep_authz_shadow_allowed_total{code="key_revoked",surface="mcp"}`, "1"},
		{`footstep_authz_decision_duration_seconds_count`, "3"},
		{`footstep_authz_info{mode="shadow",stale_policy="deny",version=""}`, "1"},
	})
}

func TestLoader(t *testing.T) {
	m := New(Config{})
	ctx := context.Background()
	h := authz.APIKey("sk_live_x").Hash()
	found, absent, bad, failing := testkit.NewStates(), testkit.NewStates(), testkit.NewStates(), testkit.NewStates()
	found.PutKey(h, authz.KeyEntry{Presence: authz.Present})
	bad.Fail(fmt.Errorf("load: %w", events.ErrBadRecord))
	failing.Fail(errors.New("timeout"))
	loaders := []cache.Loader{m.Loader(found), m.Loader(absent), m.Loader(bad), m.Loader(failing)}
	for _, l := range loaders {
		l.LoadKey(ctx, h)
	}
	loaders[0].LoadAccount(ctx, "acct_1")
	text := scrape(t, m)
	wantSamples(t, text, [][2]string{
		{`footstep_authz_kv_lookups_total{kind="key",result="` + LookupFound + `"}`, "1"},
		{`footstep_authz_kv_lookups_total{kind="key",result="` + LookupAbsent + `"}`, "1"},
		{`footstep_authz_kv_lookups_total{kind="key",result="` + LookupBadRecord + `"}`, "1"},
		{`footstep_authz_kv_lookups_total{kind="key",result="` + LookupError + `"}`, "1"},
		{`footstep_authz_kv_lookups_total{kind="account",result="absent"}`, "1"},
		{`footstep_authz_kv_lookup_duration_seconds_count{kind="key"}`, "4"},
	})
	if strings.Contains(text, h.String()) {
		t.Error("a key hash reached the metrics")
	}
}

type fakeStats struct{}

func (fakeStats) Stats() cache.Stats {
	return cache.Stats{Keys: cache.TableStats{Hits: 7, Evicted: 2}, Accounts: cache.TableStats{Misses: 3}}
}

func TestObserveAndWatch(t *testing.T) {
	m := New(Config{})
	now := time.Unix(1000, 0)
	err := m.Observe(Sources{
		Cache:        fakeStats{},
		Connected:    func() bool { return true },
		Synced:       func() bool { return false },
		LastActivity: func() time.Time { return now.Add(-90 * time.Second) },
		Staleness:    func() time.Duration { return 2500 * time.Millisecond },
		Stale:        func() bool { return true },
		Ready:        func() bool { return false },
		IndexedKeys:  func() (int, bool) { return 42, true },
		Now:          func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	w := m.WatchObserver()
	w.Applied(3 * time.Millisecond)
	w.Applied(-time.Second) // clock skew counts as no delay
	w.BadRecord()
	w.Stall()
	wantSamples(t, scrape(t, m), [][2]string{
		{`footstep_authz_cache_hits_total{table="key"}`, "7"},
		{`footstep_authz_cache_evictions_total{table="key"}`, "2"},
		{`footstep_authz_cache_misses_total{table="account"}`, "3"},
		{`footstep_authz_nats_connected`, "1"},
		{`footstep_authz_watch_synced`, "0"},
		{`footstep_authz_stale`, "1"},
		{`footstep_authz_ready`, "0"},
		{`footstep_authz_watch_index_complete`, "1"},
		{`footstep_authz_watch_indexed_keys`, "42"},
		{`footstep_authz_staleness_seconds`, "2.5"},
		{`footstep_authz_watch_last_activity_age_seconds`, "90"},
		{`footstep_authz_watch_changes_applied_total`, "2"},
		{`footstep_authz_change_lag_seconds_bucket{le="0.0005"}`, "1"},
		{`footstep_authz_change_lag_seconds_bucket{le="0.005"}`, "2"},
		{`footstep_authz_watch_bad_records_total`, "1"},
		{`footstep_authz_watch_stalls_total`, "1"},
		{`footstep_authz_watch_resyncs_total`, "0"},
	})
}

func TestExposureReported(t *testing.T) {
	m := New(Config{})
	m.ExposureReported(true, nil)
	m.ExposureReported(false, nil)
	m.ExposureReported(false, errors.New("nats down"))
	done := m.CheckStarted()
	wantSamples(t, scrape(t, m), [][2]string{
		{`footstep_authz_exposure_events_total{result="` + ExposurePublished + `"}`, "1"},
		{`footstep_authz_exposure_events_total{result="` + ExposureSuppressed + `"}`, "1"},
		{`footstep_authz_exposure_events_total{result="` + ExposureFailed + `"}`, "1"},
		{"footstep_authz_checks_in_flight", "1"},
	})
	done()
}

func BenchmarkDecided(b *testing.B) {
	m := New(Config{})
	r := &envoy.Result{Code: authz.CodeOK}
	b.ReportAllocs()
	for b.Loop() {
		m.Decided(r, time.Microsecond)
	}
}
