package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/footstep/authz/authz"
)

func init() { register("key", newKeyExpireCmd) }

// expireOut is the result of key expire.
type expireOut struct {
	Op        string `json:"op"`
	KeyHash   string `json:"key_hash"`
	ExpiresAt string `json:"expires_at"`
	Revision  uint64 `json:"revision"`
}

func (o expireOut) header() []string { return []string{"OP", "KEY_HASH", "EXPIRES_AT", "REVISION"} }
func (o expireOut) row() []string {
	return []string{o.Op, o.KeyHash, o.ExpiresAt, strconv.FormatUint(o.Revision, 10)}
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
		return printOne(e.stdout, output, expireOut{Op: "expire", KeyHash: h.String(), ExpiresAt: authz.FormatExpiry(at), Revision: rev})
	})
}
