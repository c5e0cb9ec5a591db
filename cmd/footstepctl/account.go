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
