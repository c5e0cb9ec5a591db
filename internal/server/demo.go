package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// demoKey is one demo key and the decision it gets.
type demoKey struct {
	key     authz.APIKey
	record  authz.KeyRecord
	outcome string
}

// Demo accounts: one with credit, one without.
const (
	demoAccountFunded = "acct_demo"
	demoAccountBroke  = "acct_demo_broke"
)

var demoKeys = []demoKey{
	{"sk_live_demo_active_0001", authz.KeyRecord{KeyID: "key_demo_active", AccountID: demoAccountFunded, State: authz.StateActive}, "200 allowed"},
	{"sk_live_demo_broke_0002", authz.KeyRecord{KeyID: "key_demo_broke", AccountID: demoAccountBroke, State: authz.StateActive}, "402 insufficient_balance"},
	{"sk_live_demo_suspended_0003", authz.KeyRecord{KeyID: "key_demo_suspended", AccountID: demoAccountFunded, State: authz.StateSuspended}, "403 key_suspended"},
	{"sk_live_demo_revoked_0004", authz.KeyRecord{KeyID: "key_demo_revoked", AccountID: demoAccountFunded, State: authz.StateRevoked}, "403 key_revoked"},
}

// demoUnknownKey is well-formed but never stored.
const demoUnknownKey = "sk_live_demo_unknown_0005"

// seedDemo puts the demo keys and balances back in their documented states,
// whatever an earlier run left (a demo key revoked by hand is deleted and
// put again), so that the table it prints is true; it says so. The keys are
// public: never use them outside a demo.
func seedDemo(ctx context.Context, p *events.Publisher, w io.Writer) error {
	for id, balance := range map[string]string{demoAccountFunded: "100.00", demoAccountBroke: "0.00"} {
		b, err := authz.ParseBalance(balance)
		if err != nil {
			return err
		}
		if _, err := p.SetBalance(ctx, id, b); err != nil {
			return fmt.Errorf("seed demo balance: %w", err)
		}
	}
	for _, d := range demoKeys {
		if err := resetDemoKey(ctx, p, d); err != nil {
			return fmt.Errorf("seed demo key %s: %w", d.record.KeyID, err)
		}
	}
	fmt.Fprintln(w, "Demo keys (public, for trying footstep-authz out; put back in these states at every --demo start):")
	for _, d := range demoKeys {
		fmt.Fprintf(w, "  %-28s %s\n", string(d.key), d.outcome)
	}
	fmt.Fprintf(w, "  %-28s %s\n", demoUnknownKey, "403 invalid_api_key")
	return nil
}

// resetDemoKey deletes a demo key (record and tombstone) unless it already
// holds its documented record, then puts it.
func resetDemoKey(ctx context.Context, p *events.Publisher, d demoKey) error {
	h := d.key.Hash()
	cur, err := p.GetKey(ctx, h)
	switch {
	case err == nil && cur.Record == d.record:
		return nil
	case errors.Is(err, events.ErrNotFound):
	case err != nil && !errors.Is(err, events.ErrBadRecord):
		return err
	default: // another state, or an unreadable record
		if _, err := p.DeleteKey(ctx, h); err != nil {
			return err
		}
	}
	_, err = p.PutKey(ctx, h, d.record)
	return err
}
