package server

import (
	"net/http"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// TestHealthAndStalenessDeny: with --stale-policy deny, losing NATS turns
// health NOT_SERVING and /readyz 503, cached keys are still answered until
// --max-staleness, then every lookup is 503 authz_unavailable; NATS coming
// back restores it all.
func TestHealthAndStalenessDeny(t *testing.T) {
	n := testkit.StartNATS(t)
	s := startServer(t, func(c *Config) { c.NATSURL, c.MaxStaleness, c.StalePolicy = n.URL(), 3*time.Second, StaleDeny })
	conn := dialGRPC(t, s.addr("grpc"), nil)
	readyz := "http://" + s.addr("admin") + "/readyz"
	s.put(t, "sk_live_health_1", "key_h1", "acct_h", "5.00", authz.StateActive)
	waitCached(t, s, func() bool { c, _, _ := checkCode(t, conn, "sk_live_health_1", ""); return c == 200 })
	if got := healthOf(conn); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health with NATS = %v; want SERVING", got)
	}

	n.Stop()
	if c, _, err := checkCode(t, conn, "sk_live_health_1", ""); c != 200 {
		t.Errorf("cached key just after NATS left = %d, %v; want 200 until --max-staleness", c, err)
	}
	testkit.Eventually(t, 10*time.Second, "NOT_SERVING without NATS", func() bool { return healthOf(conn) == healthpb.HealthCheckResponse_NOT_SERVING })
	if got := getStatus(readyz); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz without NATS = %d; want 503", got)
	}
	if v := metricValue(scrapeMetrics(t, s), "footstep_authz_nats_connected"); v != "0" {
		t.Errorf("nats_connected without NATS = %q; want 0", v)
	}
	testkit.Eventually(t, 10*time.Second, "stale", s.app.staleness.Stale)
	if c, _, err := checkCode(t, conn, "sk_live_health_1", ""); c != 503 {
		t.Errorf("cached key past --max-staleness = %d, %v; want 503", c, err)
	}
	if v := metricValue(scrapeMetrics(t, s), "footstep_authz_stale"); v != "1" {
		t.Errorf("footstep_authz_stale past --max-staleness = %q; want 1", v)
	}

	n.Start()
	testkit.Eventually(t, 20*time.Second, "SERVING after NATS returns", func() bool { return healthOf(conn) == healthpb.HealthCheckResponse_SERVING })
	if got := getStatus(readyz); got != http.StatusOK {
		t.Errorf("/readyz after NATS returned = %d; want 200", got)
	}
	testkit.Eventually(t, 15*time.Second, "key allowed again", func() bool { c, _, _ := checkCode(t, conn, "sk_live_health_1", ""); return c == 200 })
	if v := metricValue(scrapeMetrics(t, s), "footstep_authz_stale"); v != "0" {
		t.Errorf("footstep_authz_stale after NATS returned = %q; want 0", v)
	}
}

// TestStalenessServe: with --stale-policy serve, cached states are served
// past --max-staleness, the alarm is raised, and readiness is kept.
func TestStalenessServe(t *testing.T) {
	n := testkit.StartNATS(t)
	s := startServer(t, func(c *Config) { c.NATSURL, c.MaxStaleness, c.StalePolicy = n.URL(), time.Second, StaleServe })
	conn := dialGRPC(t, s.addr("grpc"), nil)
	s.put(t, "sk_live_serve_1", "key_s1", "acct_s", "5.00", authz.StateActive)
	waitCached(t, s, func() bool { c, _, _ := checkCode(t, conn, "sk_live_serve_1", ""); return c == 200 })

	n.Stop()
	testkit.Eventually(t, 10*time.Second, "stale alarm", func() bool {
		return metricValue(scrapeMetrics(t, s), "footstep_authz_stale") == "1"
	})
	if c, _, err := checkCode(t, conn, "sk_live_serve_1", ""); c != 200 {
		t.Errorf("cached key past --max-staleness with serve = %d, %v; want 200", c, err)
	}
	if c, _, _ := checkCode(t, conn, "sk_live_serve_unknown", ""); c != 503 {
		t.Errorf("uncached key without NATS = %d; want 503 (nothing to serve)", c)
	}
	if got := healthOf(conn); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health with serve past --max-staleness = %v; want SERVING", got)
	}
	if got := getStatus("http://" + s.addr("admin") + "/readyz"); got != http.StatusOK {
		t.Errorf("/readyz with serve past --max-staleness = %d; want 200", got)
	}
	if v := number(t, scrapeMetrics(t, s), "footstep_authz_staleness_seconds"); v < 1 {
		t.Errorf("staleness_seconds = %v; want at least 1", v)
	}
}
