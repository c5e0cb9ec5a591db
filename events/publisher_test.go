package events_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

func TestPublisherLifecycle(t *testing.T) {
	c := connect(t, startServer(t))
	ctx := testCtx(t)
	p := events.NewPublisher(c.JetStream(), openBucket(t, c))
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
