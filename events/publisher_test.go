package events_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

func TestPublisherLifecycle(t *testing.T) {
	c, ctx, kv := startBucket(t)
	p := events.NewPublisher(c.JetStream(), kv)
	h := hashOf("sk_live_pub")
	rec := authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}

	if _, err := p.Suspend(ctx, h); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Suspend(missing) = %v; want ErrNotFound", err)
	}
	r1, err := p.PutKey(ctx, h, rec)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Reactivate(ctx, h); err != nil || r != r1 {
		t.Errorf("Reactivate(active) = %d, %v; want no-op at %d", r, err, r1)
	}
	r2, err := p.Suspend(ctx, h)
	if err != nil || r2 <= r1 {
		t.Errorf("Suspend = %d, %v", r2, err)
	}
	r3, err := p.Revoke(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Revoke(ctx, h); err != nil || r != r3 {
		t.Errorf("Revoke(revoked) = %d, %v; want no-op at %d", r, err, r3)
	}
	for name, f := range map[string]func() (uint64, error){
		"Reactivate": func() (uint64, error) { return p.Reactivate(ctx, h) },
		"Suspend":    func() (uint64, error) { return p.Suspend(ctx, h) },
		"PutKey":     func() (uint64, error) { return p.PutKey(ctx, h, rec) },
	} {
		if _, err := f(); !errors.Is(err, authz.ErrRevokedTerminal) {
			t.Errorf("%s(revoked) = %v; want ErrRevokedTerminal", name, err)
		}
	}
	if e, err := p.GetKey(ctx, h); err != nil || e.Revision != r3 || e.Record.State != authz.StateRevoked {
		t.Errorf("GetKey = %+v, %v", e, err)
	}
	r4, err := p.DeleteKey(ctx, h)
	if err != nil || r4 <= r3 {
		t.Errorf("DeleteKey = %d, %v", r4, err)
	}
	if _, err := p.GetKey(ctx, h); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("GetKey(deleted) = %v; want ErrNotFound", err)
	}
	if r, err := p.DeleteKey(ctx, h); err != nil || r != 0 {
		t.Errorf("DeleteKey(deleted) = %d, %v; want no-op", r, err)
	}
	if _, err := p.PutKey(ctx, h, authz.KeyRecord{KeyID: "bad id", AccountID: "a1", State: authz.StateActive}); !errors.Is(err, events.ErrBadRecord) {
		t.Errorf("PutKey(bad id) = %v; want ErrBadRecord", err)
	}
	bal, _ := authz.ParseBalance("12.50")
	if _, err := p.SetBalance(ctx, "a1", bal); err != nil {
		t.Fatal(err)
	}
	if a, err := p.GetAccount(ctx, "a1"); err != nil || a.Account.Balance.String() != "12.50" {
		t.Errorf("GetAccount = %+v, %v", a, err)
	}
	if _, err := p.GetAccount(ctx, "nobody"); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("GetAccount(missing) = %v; want ErrNotFound", err)
	}
}

// TestPublisherConcurrentWriters races suspends, reactivations and one
// revocation: every write lands on its own revision, none after the
// revocation, and the key ends revoked.
func TestPublisherConcurrentWriters(t *testing.T) {
	c, ctx, kv := startBucket(t)
	h := hashOf("sk_live_race")
	if _, err := events.NewPublisher(c.JetStream(), kv).PutKey(ctx, h, authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive}); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		revs    = map[uint64]string{}
		revoked uint64
		wg      sync.WaitGroup
	)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := events.NewPublisher(c.JetStream(), kv)
			for i := range 15 {
				op, f := "suspend", p.Suspend
				if (g+i)%2 == 0 {
					op, f = "reactivate", p.Reactivate
				}
				if g == 0 && i == 7 {
					op, f = "revoke", p.Revoke
				}
				rev, err := f(ctx, h)
				if err != nil && !errors.Is(err, authz.ErrRevokedTerminal) {
					t.Errorf("%s: %v", op, err)
					return
				}
				if err == nil {
					mu.Lock()
					if prev, dup := revs[rev]; dup && prev != op {
						t.Errorf("revision %d returned to both %s and %s: a lost update", rev, prev, op)
					}
					revs[rev] = op
					if op == "revoke" {
						revoked = rev
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for rev, op := range revs {
		if rev > revoked && op != "revoke" {
			t.Errorf("%s landed at %d after the revocation at %d", op, rev, revoked)
		}
	}
	e, err := events.NewLoader(kv).LoadKey(ctx, h)
	if err != nil || e.Record.State != authz.StateRevoked || e.Revision != revoked {
		t.Errorf("final = %+v, %v; want revoked at %d", e, err, revoked)
	}
}

func TestPublisherExpire(t *testing.T) {
	c, ctx, kv := startBucket(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := testkit.NewClock(t0)
	p := events.NewPublisher(c.JetStream(), kv, events.WithClock(clock.Now))
	h := hashOf("sk_live_expire_me")
	rec := authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}

	if _, err := p.Expire(ctx, h, t0.Add(time.Hour)); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Expire(missing) = %v; want ErrNotFound", err)
	}
	if _, err := p.PutKey(ctx, h, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Expire(ctx, h, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, authz.ErrExpiryFormat) {
		t.Errorf("Expire(1999) = %v; want ErrExpiryFormat", err)
	}
	at := t0.Add(time.Hour).In(time.FixedZone("CET", 3600))
	r1, err := p.Expire(ctx, h, at)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.Expire(ctx, h, at); err != nil || r != r1 {
		t.Errorf("Expire(same instant) = %d, %v; want no-op at %d", r, err, r1)
	}
	e, err := p.GetKey(ctx, h)
	if err != nil || !e.Record.ExpiresAt.Equal(at) || e.Record.ExpiresAt.Location() != time.UTC {
		t.Fatalf("GetKey = %+v, %v; want expires_at %v in UTC", e, err, at)
	}
	if _, err := p.Expire(ctx, h, t0.Add(2*time.Hour)); err != nil {
		t.Errorf("Expire(later, before the first instant) = %v; want allowed", err)
	}

	clock.Set(t0.Add(2 * time.Hour))
	for name, f := range map[string]func() (uint64, error){
		"Expire":     func() (uint64, error) { return p.Expire(ctx, h, t0.Add(48*time.Hour)) },
		"Reactivate": func() (uint64, error) { return p.Reactivate(ctx, h) },
		"Suspend":    func() (uint64, error) { return p.Suspend(ctx, h) },
		"PutKey":     func() (uint64, error) { return p.PutKey(ctx, h, rec) },
	} {
		if _, err := f(); !errors.Is(err, authz.ErrExpiredTerminal) || !errors.Is(err, authz.ErrRevokedTerminal) {
			t.Errorf("%s(expired) = %v; want ErrExpiredTerminal, matching ErrRevokedTerminal", name, err)
		}
	}
	if _, err := p.Revoke(ctx, h); err != nil {
		t.Errorf("Revoke(expired) = %v; want allowed", err)
	}
	if _, err := p.Expire(ctx, h, t0.Add(72*time.Hour)); !errors.Is(err, authz.ErrRevokedTerminal) {
		t.Errorf("Expire(revoked) = %v; want ErrRevokedTerminal", err)
	}
	if _, err := p.DeleteKey(ctx, h); err != nil {
		t.Errorf("DeleteKey(expired) = %v", err)
	}
}

func TestPublisherRotate(t *testing.T) {
	c, ctx, kv := startBucket(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := testkit.NewClock(t0)
	p := events.NewPublisher(c.JetStream(), kv, events.WithClock(clock.Now))
	oldH, newH, other := hashOf("sk_live_rotate_old"), hashOf("sk_live_rotate_new"), hashOf("sk_live_rotate_other")

	if _, err := p.Rotate(ctx, oldH, newH, "k2", time.Hour, t0); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Rotate(missing old) = %v; want ErrNotFound", err)
	}
	if _, err := p.PutKey(ctx, oldH, authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PutKey(ctx, other, authz.KeyRecord{KeyID: "k3", AccountID: "a9", State: authz.StateActive}); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"same key":       func() error { _, err := p.Rotate(ctx, oldH, oldH, "k2", time.Hour, t0); return err },
		"bad id":         func() error { _, err := p.Rotate(ctx, oldH, newH, "sk_live_x", time.Hour, t0); return err },
		"negative grace": func() error { _, err := p.Rotate(ctx, oldH, newH, "k2", -time.Second, t0); return err },
		"new key exists": func() error { _, err := p.Rotate(ctx, oldH, other, "k2", time.Hour, t0); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("Rotate(%s) = nil; want an error", name)
		}
	}
	if _, err := p.Rotate(ctx, oldH, other, "k2", time.Hour, t0); !errors.Is(err, events.ErrKeyExists) {
		t.Errorf("Rotate(new key exists) = %v; want ErrKeyExists", err)
	}
	if e, _ := p.GetKey(ctx, oldH); !e.Record.ExpiresAt.IsZero() {
		t.Errorf("refused rotations changed the old key: %+v", e)
	}

	rot, err := p.Rotate(ctx, oldH, newH, "k2", 24*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := events.Rotation{OldKeyID: "k1", NewKeyID: "k2", AccountID: "a1", OldExpiresAt: t0.Add(24 * time.Hour),
		OldRevision: rot.OldRevision, NewRevision: rot.NewRevision}
	if rot != want || rot.OldRevision <= rot.NewRevision {
		t.Errorf("Rotate = %+v; want %+v, the old key written after the new", rot, want)
	}
	if e, err := p.GetKey(ctx, newH); err != nil || e.Record != (authz.KeyRecord{KeyID: "k2", AccountID: "a1", State: authz.StateActive}) {
		t.Errorf("new key = %+v, %v", e, err)
	}
	if e, err := p.GetKey(ctx, oldH); err != nil || !e.Record.ExpiresAt.Equal(t0.Add(24*time.Hour)) || e.Record.State != authz.StateActive {
		t.Errorf("old key = %+v, %v; want active, expiring in 24h", e, err)
	}

	// A second rotation keeps the old key's earlier expiry; once it has
	// passed, the old key cannot be rotated again.
	newer := hashOf("sk_live_rotate_newer")
	rot, err = p.Rotate(ctx, oldH, newer, "k4", 48*time.Hour, t0)
	if err != nil || !rot.OldExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("Rotate(again) = %+v, %v; want the earlier expiry kept", rot, err)
	}
	clock.Set(t0.Add(24 * time.Hour))
	if _, err := p.Rotate(ctx, oldH, hashOf("sk_live_rotate_late"), "k5", time.Hour, t0.Add(24*time.Hour)); !errors.Is(err, authz.ErrRevokedTerminal) {
		t.Errorf("Rotate(expired old key) = %v; want ErrRevokedTerminal", err)
	}
	if _, err := p.GetKey(ctx, hashOf("sk_live_rotate_late")); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("a refused rotation left its new key: %v", err)
	}
}
