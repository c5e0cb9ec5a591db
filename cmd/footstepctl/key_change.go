package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/spf13/cobra"
)

func init() {
	register("key", newKeyStateCmd("suspend", "Suspend a key: it answers 403 key_suspended until reactivated",
		func(b bucket) keyOp { return b.Suspend }))
	register("key", newKeyStateCmd("reactivate", "Reactivate a suspended key (refused for a revoked key)",
		func(b bucket) keyOp { return b.Reactivate }))
	register("key", newKeyStateCmd("revoke", "Revoke a key for good: revoked is terminal, only key delete follows",
		func(b bucket) keyOp { return b.Revoke }))
	register("key", newKeyExpireCmd)
}

// keyOp is one change of an existing key; it returns the new revision.
type keyOp func(context.Context, authz.KeyHash) (uint64, error)

// changeOut is the result of a key change.
type changeOut struct {
	Op      string `json:"op"`
	KeyHash string `json:"key_hash"`
	// ExpiresAt is the instant key expire set (RFC 3339, UTC); empty for
	// every other change.
	ExpiresAt string `json:"expires_at,omitempty"`
	Revision  uint64 `json:"revision"`
}

func (c changeOut) header() []string { return c.cells("OP", "KEY_HASH", "EXPIRES_AT", "REVISION") }
func (c changeOut) row() []string {
	return c.cells(c.Op, c.KeyHash, c.ExpiresAt, strconv.FormatUint(c.Revision, 10))
}

// cells leaves out the expiry column of a change that sets no instant.
func (c changeOut) cells(op, hash, expires, rev string) []string {
	if c.ExpiresAt == "" {
		return []string{op, hash, rev}
	}
	return []string{op, hash, expires, rev}
}

// newKeyStateCmd returns the command of a change of a key's state, with an
// example of each way to name the key.
func newKeyStateCmd(op, short string, change func(bucket) keyOp) commandFactory {
	return newKeyChangeCmd(leaf{
		use:   op,
		short: short,
		example: "  printf '%s\\n' \"$KEY\" | footstepctl key " + op + " --key -\n" +
			"  FOOTSTEP_API_KEY=... footstepctl key " + op + "\n" +
			"  footstepctl key " + op + " --hash 5e8f... -o table",
	}, change)
}

// newKeyChangeCmd returns a command that applies one change to an existing
// key, revision-checked, and prints the key's new revision.
func newKeyChangeCmd(l leaf, change func(bucket) keyOp) commandFactory {
	return func(e *cmdEnv) *cobra.Command {
		return l.keyCommand(e, func(ctx context.Context, h authz.KeyHash, output string) error {
			return e.withBucket(ctx, true, func(b bucket) error {
				rev, err := change(b)(ctx, h)
				if err != nil {
					return keyError(err)
				}
				return printOne(e.stdout, output, changeOut{Op: l.use, KeyHash: h.String(), Revision: rev})
			})
		})
	}
}

func newKeyExpireCmd(e *cmdEnv) *cobra.Command {
	var k keyFlags
	var at string
	var in time.Duration
	cmd := leaf{
		use:   "expire",
		short: "Set the instant from which a key answers as revoked (expires_at)",
		long: `Set a key's expires_at. From that instant every footstep-authz replica answers
the key 403 key_revoked, with no further event, and the key is then terminal like
a revoked one: only key revoke and key delete are accepted. Before the instant,
expire may move it. A revoked or already expired key is refused.`,
		example: `  printf '%s\n' "$KEY" | footstepctl key expire --key - --in 30d
  footstepctl key expire --hash 5e8f... --at 2026-12-31T00:00:00Z -o table`,
	}.command(func(cmd *cobra.Command, output string) error {
		// The instant is checked before the key is read.
		when, err := expiryFlags(cmd, at, in, time.Now())
		if err != nil {
			return err
		}
		h, err := k.resolve(e)
		if err != nil {
			return err
		}
		return e.expireKey(cmd.Context(), h, when, output)
	})
	k.register(cmd)
	cmd.Flags().StringVar(&at, "at", "", "the instant, RFC 3339 in UTC, e.g. 2026-12-31T00:00:00Z")
	cmd.Flags().Var(daysValue{&in}, "in", "how long from now, e.g. 90d, 36h or 1d12h")
	return cmd
}

// expiryFlags returns the instant named by --at or --in (exactly one).
func expiryFlags(cmd *cobra.Command, at string, in time.Duration, now time.Time) (time.Time, error) {
	hasAt, hasIn := cmd.Flags().Changed("at"), cmd.Flags().Changed("in")
	switch {
	case hasAt == hasIn:
		return time.Time{}, errors.New("give --at or --in, exactly one")
	case hasIn:
		return now.Add(in).UTC().Round(0), nil
	}
	t, err := authz.ParseExpiry(at)
	if err != nil {
		return time.Time{}, errors.New("--at: want an RFC 3339 instant in UTC such as 2026-12-31T00:00:00Z, in the years 2000 to 9999")
	}
	return t, nil
}

func (e *cmdEnv) expireKey(ctx context.Context, h authz.KeyHash, at time.Time, output string) error {
	return e.withBucket(ctx, true, func(b bucket) error {
		rev, err := b.Expire(ctx, h, at)
		if err != nil {
			return keyError(err)
		}
		return printOne(e.stdout, output, changeOut{Op: "expire", KeyHash: h.String(), ExpiresAt: authz.FormatExpiry(at), Revision: rev})
	})
}
