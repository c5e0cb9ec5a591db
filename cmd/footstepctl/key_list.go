package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/footstep/authz/authz"
)

func init() { register("key", newKeyListCmd) }

// listedKey is one line of key list.
type listedKey struct {
	KeyHash   string `json:"key_hash"`
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id"`
	State     string `json:"state"` // effective: revoked when the key has a tombstone
	ExpiresAt string `json:"expires_at,omitempty"`
	LastUsed  string `json:"last_used"` // RFC 3339; empty when never recorded
}

func (k listedKey) header() []string {
	return []string{"KEY_HASH", "KEY_ID", "ACCOUNT_ID", "STATE", "EXPIRES_AT", "LAST_USED"}
}

func (k listedKey) row() []string {
	expires := k.ExpiresAt
	if expires == "" {
		expires = "-"
	}
	return []string{k.KeyHash, k.KeyID, k.AccountID, k.State, expires, lastUsedCell(k.LastUsed)}
}

func newKeyListCmd(e *cmdEnv) *cobra.Command {
	var unused time.Duration
	cmd := leaf{
		use:   "list",
		short: "List keys with their last use; --unused-for lists those not used for that long",
		long: `List every key of the bucket, by hash, with its id, account, effective state,
expiry and last use (from the footstep-usage bucket that footstep-authz replicas
fill once a minute). With --unused-for, only the keys not used for at least that
long, or never used, are listed: candidates for revocation.`,
		example: `  footstepctl key list -o table
  footstepctl key list --unused-for 90d -o table`,
	}.command(func(cmd *cobra.Command, output string) error {
		var cutoff time.Time
		if cmd.Flags().Changed("unused-for") {
			cutoff = time.Now().Add(-unused)
		}
		return e.listKeys(cmd.Context(), cutoff, output)
	})
	cmd.Flags().Var(daysValue{&unused}, "unused-for", "list only keys not used for this long or never used, e.g. 90d")
	return cmd
}

// listKeys prints the keys last used before cutoff or never (every key when
// cutoff is zero), in hash order.
func (e *cmdEnv) listKeys(ctx context.Context, cutoff time.Time, output string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	recs, _, err := e.readBucket(ctx)
	if err != nil {
		return err
	}
	used, err := e.readUsage(ctx)
	if err != nil {
		return err
	}
	p := &streamPrinter{w: e.stdout, format: output, widths: []int{64, 16, 16, 9, 20}}
	for _, r := range recs {
		last, seen := used[r.hash]
		if !r.isKey || !cutoff.IsZero() && seen && !last.Before(cutoff) {
			continue
		}
		if err := p.print(listed(r.hash, r.key, last)); err != nil {
			return err
		}
	}
	return nil
}

func listed(h authz.KeyHash, rec authz.KeyRecord, last time.Time) listedKey {
	k := listedKey{KeyHash: h.String(), KeyID: rec.KeyID, AccountID: rec.AccountID, State: string(rec.State)}
	if !rec.ExpiresAt.IsZero() {
		k.ExpiresAt = authz.FormatExpiry(rec.ExpiresAt)
	}
	if !last.IsZero() {
		k.LastUsed = last.UTC().Format(time.RFC3339)
	}
	return k
}
