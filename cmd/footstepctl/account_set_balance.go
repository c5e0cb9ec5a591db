package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func init() { register("account", newSetBalanceCmd) }

func newSetBalanceCmd(e *cmdEnv) *cobra.Command {
	var balance string
	cmd := leaf{
		use:   "set-balance",
		short: "Set an account's balance (set, not added to: the last writer wins)",
		long: `Set an account's balance, an exact decimal that may be negative. A key of an
account whose balance is zero or less, or that has no balance, answers 402
insufficient_balance. The balance is set, not added to, so the last writer
wins; a record that does not decode is replaced too.`,
		example: `  footstepctl account set-balance --account acct_9 --balance 12.50
  footstepctl account set-balance --account acct_9 --balance -3 -o yaml`,
	}.accountCommand(func(ctx context.Context, account, output string) error {
		if balance == "" {
			return errors.New("missing --balance")
		}
		b, err := authz.ParseBalance(balance)
		if err != nil {
			return fmt.Errorf("--balance: %w", err)
		}
		return e.withPublisher(ctx, true, func(p *events.Publisher, _ jetstream.KeyValue) error {
			rev, err := p.SetBalance(ctx, account, b)
			if err != nil {
				return err
			}
			return printOne(e.stdout, output, accountOut{AccountID: account, Balance: b.String(), Revision: rev})
		})
	})
	cmd.Flags().StringVar(&balance, "balance", "", `balance, a decimal such as 12.50 or -3 (required)`)
	return cmd
}
