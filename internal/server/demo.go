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

// seedDemo writes the demo keys and balances, unless they are there already,
// and prints them. The keys are public: never use them outside a demo.
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
	fmt.Fprintln(w, "Demo keys (public, for trying footstep-authz out):")
	for _, d := range demoKeys {
		if _, err := p.PutKey(ctx, d.key.Hash(), d.record); err != nil && !errors.Is(err, authz.ErrRevokedTerminal) {
			return fmt.Errorf("seed demo key %s: %w", d.record.KeyID, err)
		}
		fmt.Fprintf(w, "  %-28s %s\n", string(d.key), d.outcome)
	}
	fmt.Fprintf(w, "  %-28s %s\n", demoUnknownKey, "403 invalid_api_key")
	return nil
}
