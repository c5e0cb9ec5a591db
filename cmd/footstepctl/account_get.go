package main

import (
	"context"
	"errors"

	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func init() { register("account", newAccountGetCmd) }

func newAccountGetCmd(e *cmdEnv) *cobra.Command {
	return leaf{
		use:   "get",
		short: "Print an account's balance",
		long: `Print an account's balance and revision. A record that does not decode is
described by its KV entry (KV key, revision, created time, size, why it does
not decode; never its value) and the command fails.`,
		example: `  footstepctl account get --account acct_9
  footstepctl account get --account acct_9 -o table`,
	}.accountCommand(func(ctx context.Context, account, output string) error {
		return e.withPublisher(ctx, false, func(p *events.Publisher, kv jetstream.KeyValue) error {
			entry, err := p.GetAccount(ctx, account)
			if errors.Is(err, events.ErrBadRecord) {
				raw, rerr := inspectRaw(ctx, kv, events.AccountKVKey(account), entry.Revision, decodeAccountValue)
				if rerr != nil {
					return rerr
				}
				if perr := printOne(e.stdout, output, raw); perr != nil {
					return perr
				}
			}
			if err != nil {
				return accountError(err)
			}
			return printOne(e.stdout, output, accountOut{AccountID: account, Balance: entry.Account.Balance.String(), Revision: entry.Revision})
		})
	})
}
