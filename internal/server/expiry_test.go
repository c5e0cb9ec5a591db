package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

func withClock(now func() time.Time) func(*Config) { return func(c *Config) { c.now = now } }

func withNATS(url string) func(*Config) { return func(c *Config) { c.NATSURL = url } }

// decisionOf calls Check with key in x-api-key and returns the HTTP status
// and the code of the answer ("ok" when allowed).
func decisionOf(tb testing.TB, s *testServer, key string) (int, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.client.Check(ctx, testkit.KeyCheck(key))
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	if resp.GetOkResponse() != nil {
		return 200, "ok"
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), resp.GetStatus().GetMessage()
}

// TestExpiryAtTheInstant: on two replicas, a hot key is allowed one
// millisecond before its expires_at and answered key_revoked from that
// instant, with no bucket change in between: each replica decides from
// the record it holds and its own clock.
func TestExpiryAtTheInstant(t *testing.T) {
	n := testkit.StartNATS(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	clock := testkit.NewClock(exp.Add(-time.Millisecond))
	replicas := []*testServer{
		startServer(t, withNATS(n.URL()), withClock(clock.Now)),
		startServer(t, withNATS(n.URL()), withClock(clock.Now)),
	}
	ctx := context.Background()
	p := replicas[0].publisher()
	const key = "sk_live_expires_at_the_instant"
	setBalance(t, p, "acct_exp", "10")
	rev, err := p.PutKey(ctx, authz.APIKey(key).Hash(), authz.KeyRecord{KeyID: "key_exp", AccountID: "acct_exp", State: authz.StateActive, ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range replicas {
		testkit.Eventually(t, 15*time.Second, "replica has the key", func() bool { return s.app.Status().Revision >= rev })
		for range 20 { // hot: cached by now
			if status, code := decisionOf(t, s, key); status != 200 {
				t.Fatalf("replica %d, 1ms before expires_at: %d %s; want 200", i, status, code)
			}
		}
	}
	before := replicas[0].app.Status().Revision
	clock.Set(exp)
	for i, s := range replicas {
		if status, code := decisionOf(t, s, key); status != 403 || code != "key_revoked" {
			t.Errorf("replica %d at expires_at: %d %s; want 403 key_revoked", i, status, code)
		}
	}
	clock.Set(exp.Add(time.Millisecond))
	for i, s := range replicas {
		if status, code := decisionOf(t, s, key); status != 403 || code != "key_revoked" {
			t.Errorf("replica %d after expires_at: %d %s; want 403 key_revoked", i, status, code)
		}
		if got := metricValue(scrapeMetrics(t, s), "footstep_authz_key_expiries_total"); got != "2" {
			t.Errorf("replica %d: key_expiries_total = %s; want 2", i, got)
		}
	}
	if after := replicas[0].app.Status().Revision; after != before {
		t.Errorf("bucket revision moved from %d to %d: expiry needed an event", before, after)
	}
}

// TestExpiredKeyPutBackActive: an expired key is terminal. The Publisher
// refuses to put it back as active; a raw put does not revive it on the
// replica that sees the put, nor on one started afterwards.
func TestExpiredKeyPutBackActive(t *testing.T) {
	n := testkit.StartNATS(t)
	s1 := startServer(t, withNATS(n.URL()))
	ctx := context.Background()
	p := s1.publisher()
	const key = "sk_live_expired_then_revived"
	h := authz.APIKey(key).Hash()
	setBalance(t, p, "acct_rev", "10")
	rec := authz.KeyRecord{KeyID: "key_rev", AccountID: "acct_rev", State: authz.StateActive}
	rev, err := p.PutKey(ctx, h, rec)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "key applied", func() bool { return s1.app.Status().Revision >= rev })
	if status, _ := decisionOf(t, s1, key); status != 200 {
		t.Fatalf("before expiry: %d; want 200", status)
	}
	if _, err := p.Expire(ctx, h, time.Now().Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "expired", func() bool { _, code := decisionOf(t, s1, key); return code == "key_revoked" })

	if _, err := p.PutKey(ctx, h, rec); !errors.Is(err, authz.ErrRevokedTerminal) {
		t.Errorf("PutKey(expired key, active, no expiry) = %v; want ErrRevokedTerminal", err)
	}
	if _, err := p.Reactivate(ctx, h); !errors.Is(err, authz.ErrRevokedTerminal) {
		t.Errorf("Reactivate(expired key) = %v; want ErrRevokedTerminal", err)
	}
	val, _ := events.EncodeKey(rec)
	raw, err := s1.app.nats.kv.Put(ctx, events.KeyKVKey(h), val)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "raw put applied", func() bool { return s1.app.Status().Revision >= raw })
	if status, code := decisionOf(t, s1, key); status != 403 || code != "key_revoked" {
		t.Errorf("replica that saw the raw put: %d %s; want 403 key_revoked", status, code)
	}
	testkit.Eventually(t, 15*time.Second, "tombstone written", func() bool {
		v, err := p.InspectKey(ctx, h)
		return err == nil && v.Tombstone != nil && v.Stored.Record.State == authz.StateRevoked
	})
	s2 := startServer(t, withNATS(n.URL()))
	if status, code := decisionOf(t, s2, key); status != 403 || code != "key_revoked" {
		t.Errorf("replica started afterwards: %d %s; want 403 key_revoked", status, code)
	}
}
