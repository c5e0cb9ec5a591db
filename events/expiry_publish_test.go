package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

func TestPublisherExpire(t *testing.T) {
	c := connect(t, startServer(t))
	ctx := testCtx(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := testkit.NewClock(t0)
	p := events.NewPublisher(c.JetStream(), openBucket(t, c), events.WithClock(clock.Now))
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
