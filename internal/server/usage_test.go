package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

func withUsage(interval time.Duration, replica string) func(*Config) {
	return func(c *Config) { c.UsageTracking, c.UsageInterval, c.Replica = true, interval, replica }
}

// TestUsageSummaries: checks of a known key reach footstep.events.key_used
// and the usage bucket within an interval, counted by code, with the key's
// hash and id and never the key itself.
func TestUsageSummaries(t *testing.T) {
	n := testkit.StartNATS(t)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	msgs := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe(events.UsageSubject, msgs); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, withNATS(n.URL()), withUsage(100*time.Millisecond, "replica-a"))
	const key, broke = "sk_live_usage_tracked_secret", "sk_live_usage_broke_secret"
	s.put(t, key, "key_used", "acct_used", "5", authz.StateActive)
	s.put(t, broke, "key_broke", "acct_broke", "0", authz.StateActive)
	h := authz.APIKey(key).Hash()
	for range 3 {
		if status, _ := decisionOf(t, s, key); status != 200 {
			t.Fatalf("Check = %d; want 200", status)
		}
	}
	if _, err := s.publisher().Suspend(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "suspension applied", func() bool { _, code := decisionOf(t, s, key); return code == "key_suspended" })
	decisionOf(t, s, broke)
	decisionOf(t, s, "sk_live_usage_unknown_secret") // unknown keys are not tracked

	counts := map[string]uint64{}
	deadline := time.After(10 * time.Second)
	for counts["ok"] < 3 || counts["key_suspended"] < 1 {
		select {
		case m := <-msgs:
			for _, secret := range []string{key, broke, "sk_live_"} {
				if strings.Contains(string(m.Data), secret) {
					t.Fatalf("usage message holds a plaintext key: %s", m.Data)
				}
			}
			var b events.UsageBatch
			if err := json.Unmarshal(m.Data, &b); err != nil {
				t.Fatal(err)
			}
			for _, u := range b.Keys {
				if u.KeyID == "" || u.KeyHash == "" || b.Replica != "replica-a" || u.Replica != "replica-a" {
					t.Errorf("summary %+v in batch of %q: want ids, hash and replica", u, b.Replica)
				}
				if u.KeyHash == h.String() {
					for code, n := range u.Counts {
						counts[code] += n
					}
				}
			}
		case <-deadline:
			t.Fatalf("summaries of the key: counts %v; want ok 3 and key_suspended at least 1", counts)
		}
	}
	ukv, err := events.OpenUsageBucket(context.Background(), s.app.nats.conn.JetStream(), events.DefaultUsageBucket, 1)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "usage record merged", func() bool {
		u, _, err := events.GetUsage(context.Background(), ukv, h)
		return err == nil && u.Counts["ok"] >= 3 && u.Counts["key_suspended"] >= 1 && u.KeyID == "key_used" && !u.LastSeen.IsZero()
	})
	if _, _, err := events.GetUsage(context.Background(), ukv, authz.APIKey("sk_live_usage_unknown_secret").Hash()); err == nil {
		t.Error("an unknown key has a usage record")
	}
	keys, err := ukv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		e, err := ukv.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, "sk_live_") || strings.Contains(string(e.Value()), "sk_live_") {
			t.Errorf("usage bucket holds a plaintext key at %s", k)
		}
	}
	if v := number(t, scrapeMetrics(t, s), "footstep_authz_usage_summaries_published_total"); v < 2 {
		t.Errorf("usage_summaries_published_total = %v; want at least 2", v)
	}
	if strings.Contains(s.logs.String(), "sk_live_usage") {
		t.Error("logs hold a plaintext key")
	}
}

// TestUsageTrackingOff: with tracking off nothing is recorded.
func TestUsageTrackingOff(t *testing.T) {
	s := startServer(t, func(c *Config) { c.UsageTracking = false })
	if s.app.usage != nil {
		t.Fatal("usage tracking runs although it is off")
	}
	s.put(t, "sk_live_usage_off", "key_off", "acct_off", "5", authz.StateActive)
	if status, _ := decisionOf(t, s, "sk_live_usage_off"); status != 200 {
		t.Fatalf("Check = %d; want 200", status)
	}
	if v := number(t, scrapeMetrics(t, s), "footstep_authz_usage_summaries_published_total"); v != 0 {
		t.Errorf("usage_summaries_published_total = %v; want 0", v)
	}
}
