package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/spf13/cobra"
)

func init() {
	registerGroup("account", "Set and read account balances",
		`  footstepctl account set-balance --account acct_9 --balance 12.50
  footstepctl account get --account acct_9 -o table`)
	register("account", newAccountGetCmd)
	register("account", newSetBalanceCmd)
}

// accountOut is an account as footstepctl prints it.
type accountOut struct {
	AccountID string `json:"account_id"`
	Balance   string `json:"balance"`
	Revision  uint64 `json:"revision"`
}

func (a accountOut) header() []string { return []string{"ACCOUNT_ID", "BALANCE", "REVISION"} }
func (a accountOut) row() []string {
	return []string{a.AccountID, a.Balance, strconv.FormatUint(a.Revision, 10)}
}

func checkAccount(id string) error {
	switch {
	case id == "":
		return errors.New("missing --account")
	case authz.CheckID("--account", id) != nil:
		return authz.CheckID("--account", id)
	}
	return nil
}

// accountCommand is leaf.command for a command about one account, named
// with --account: run gets the account id, checked first.
func (l leaf) accountCommand(run func(ctx context.Context, account, output string) error) *cobra.Command {
	var account string
	cmd := l.command(func(cmd *cobra.Command, output string) error {
		if err := checkAccount(account); err != nil {
			return err
		}
		return run(cmd.Context(), account, output)
	})
	cmd.Flags().StringVar(&account, "account", "", "account id (required)")
	return cmd
}

// accountError turns the errors of an account read into what the user can
// do about them.
func accountError(err error) error {
	switch {
	case errors.Is(err, events.ErrNotFound):
		return errors.New("account not found")
	case errors.Is(err, events.ErrBadRecord):
		return fmt.Errorf("the account's record is unreadable (%s): account get shows it, account set-balance replaces it", problem(err))
	}
	return err
}

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
		return e.withBucket(ctx, false, func(b bucket) error {
			entry, err := b.GetAccount(ctx, account)
			if errors.Is(err, events.ErrBadRecord) {
				raw, rerr := b.inspectRaw(ctx, events.AccountKVKey(account), entry.Revision, decodeAccountValue)
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
		bal, err := authz.ParseBalance(balance)
		if err != nil {
			return fmt.Errorf("--balance: %w", err)
		}
		return e.withBucket(ctx, true, func(b bucket) error {
			rev, err := b.SetBalance(ctx, account, bal)
			if err != nil {
				return err
			}
			return printOne(e.stdout, output, accountOut{AccountID: account, Balance: bal.String(), Revision: rev})
		})
	})
	cmd.Flags().StringVar(&balance, "balance", "", `balance, a decimal such as 12.50 or -3 (required)`)
	return cmd
}
