package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

func (e *cmdEnv) account(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("account: missing subcommand (set-balance, get): %w", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "set-balance":
		return e.setBalance(ctx, rest)
	case "get":
		return e.accountGet(ctx, rest)
	default:
		return fmt.Errorf("account: unknown subcommand %q: %w", clip(sub), errUsage)
	}
}

func (e *cmdEnv) setBalance(ctx context.Context, args []string) error {
	var account, balance string
	fs := newFlagSet("account set-balance")
	fs.StringVar(&account, "account", "", "account id")
	fs.StringVar(&balance, "balance", "", "balance, a decimal such as 12.50 or -3")
	if err := e.parse(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if err := checkAccount(account); err != nil {
		return fmt.Errorf("account set-balance: %w", err)
	}
	if balance == "" {
		return errors.New("account set-balance: missing --balance")
	}
	b, err := authz.ParseBalance(balance)
	if err != nil {
		return fmt.Errorf("account set-balance: --balance: %w", err)
	}
	return e.withPublisher(ctx, true, func(p *events.Publisher) error {
		rev, err := p.SetBalance(ctx, account, b)
		if err != nil {
			return err
		}
		return writeJSON(e.stdout, accountOut{AccountID: account, Balance: b.String(), Revision: rev})
	})
}

func (e *cmdEnv) accountGet(ctx context.Context, args []string) error {
	var account string
	fs := newFlagSet("account get")
	fs.StringVar(&account, "account", "", "account id")
	if err := e.parse(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if err := checkAccount(account); err != nil {
		return fmt.Errorf("account get: %w", err)
	}
	return e.withPublisher(ctx, false, func(p *events.Publisher) error {
		entry, err := p.GetAccount(ctx, account)
		if errors.Is(err, events.ErrNotFound) {
			return errors.New("account not found")
		}
		if err != nil {
			return err
		}
		return writeJSON(e.stdout, accountOut{AccountID: account, Balance: entry.Account.Balance.String(), Revision: entry.Revision})
	})
}

func checkAccount(id string) error {
	switch {
	case id == "":
		return errors.New("missing --account")
	case !authz.ValidID(id):
		return errors.New("--account: want 1 to 64 of [A-Za-z0-9_-]")
	}
	return nil
}

type accountOut struct {
	AccountID string `json:"account_id"`
	Balance   string `json:"balance"`
	Revision  uint64 `json:"revision"`
}

// withPublisher connects, runs f with a Publisher and a bounded context, and
// closes the connection.
func (e *cmdEnv) withPublisher(ctx context.Context, create bool, f func(*events.Publisher) error) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	conn, kv, err := e.open(ctx, create)
	if err != nil {
		return err
	}
	defer conn.Close()
	return f(events.NewPublisher(conn.JetStream(), kv))
}

// helpAsked reports whether the arguments asked for help, which parse has
// already answered.
func helpAsked(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "-h" || a == "-help" || a == "--help" || a == "--h"
	})
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
