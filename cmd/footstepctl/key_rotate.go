package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

func init() { register("key", newKeyRotateCmd) }

// newAPIKeyEnv holds the new key of key rotate, beside apiKeyEnv for the old.
const newAPIKeyEnv = "FOOTSTEP_NEW_API_KEY"

// defaultGrace is how long the old key keeps working after a rotation.
const defaultGrace = 24 * time.Hour

// rotateOut is the result of key rotate.
type rotateOut struct {
	OldKeyHash   string `json:"old_key_hash"`
	OldKeyID     string `json:"old_key_id"`
	NewKeyHash   string `json:"new_key_hash"`
	NewKeyID     string `json:"new_key_id"`
	AccountID    string `json:"account_id"`
	OldExpiresAt string `json:"old_expires_at"` // the old key answers key_revoked from then
	OldRevision  uint64 `json:"old_revision"`
	NewRevision  uint64 `json:"new_revision"`
}

func (o rotateOut) header() []string {
	return []string{"OLD_KEY_ID", "NEW_KEY_ID", "ACCOUNT_ID", "OLD_EXPIRES_AT", "OLD_REVISION", "NEW_REVISION"}
}

func (o rotateOut) row() []string {
	return []string{o.OldKeyID, o.NewKeyID, o.AccountID, o.OldExpiresAt,
		strconv.FormatUint(o.OldRevision, 10), strconv.FormatUint(o.NewRevision, 10)}
}

func newKeyRotateCmd(e *cmdEnv) *cobra.Command {
	var newID string
	grace := defaultGrace
	cmd := leaf{
		use:   "rotate",
		short: "Replace a key by a new one on the same account; the old one expires after a grace period",
		long: `Rotate a key: the new key is put active on the old key's account (refused when
it exists already), then the old key's expires_at is set to now plus --grace (an
earlier expiry is kept), both revision-checked. It prints both key ids, the
account and the instant from which the old key answers key_revoked.

The keys are read from standard input, the old key on the first line and the
new key on the second, or from ` + apiKeyEnv + ` (old) and ` + newAPIKeyEnv + ` (new)
when both are set; never from the command line.`,
		example: `  printf '%s\n%s\n' "$OLD_KEY" "$NEW_KEY" | footstepctl key rotate --new-id key_124
  FOOTSTEP_API_KEY=... FOOTSTEP_NEW_API_KEY=... footstepctl key rotate --new-id key_124 --grace 7d -o table`,
	}.command(func(cmd *cobra.Command, output string) error {
		if err := authz.CheckID("--new-id", newID); err != nil {
			return err
		}
		oldH, newH, err := rotationKeys(e)
		if err != nil {
			return err
		}
		return e.rotateKey(cmd.Context(), oldH, newH, newID, grace, output)
	})
	cmd.Flags().StringVar(&newID, "new-id", "", "key_id of the new key (required)")
	cmd.Flags().Var(daysValue{&grace}, "grace", "how long the old key keeps working, e.g. 24h or 7d")
	return cmd
}

// rotationKeys returns the hashes of the old and the new key, from the
// environment when both variables are set, else from two lines of stdin.
func rotationKeys(e *cmdEnv) (oldH, newH authz.KeyHash, err error) {
	oldKey, newKey := strings.TrimSpace(e.getenv(apiKeyEnv)), strings.TrimSpace(e.getenv(newAPIKeyEnv))
	switch {
	case oldKey != "" && newKey != "":
	case oldKey != "" || newKey != "":
		return oldH, newH, fmt.Errorf("set both %s and %s, or neither and give both keys on standard input", apiKeyEnv, newAPIKeyEnv)
	default:
		if oldKey, newKey, err = readTwoKeys(e.stdin); err != nil {
			return oldH, newH, err
		}
	}
	if oldH, err = hashKey("old key", oldKey); err != nil {
		return oldH, newH, err
	}
	if newH, err = hashKey("new key", newKey); err != nil {
		return oldH, newH, err
	}
	if oldH == newH {
		return oldH, newH, errors.New("the new key is the old key")
	}
	return oldH, newH, nil
}

// readTwoKeys reads the old key and the new key from the first two lines.
func readTwoKeys(r io.Reader) (oldKey, newKey string, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, 4096))
	var lines []string
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 2 {
		return "", "", errors.New("want the old key and the new key on two lines of standard input (or " + apiKeyEnv + " and " + newAPIKeyEnv + ")")
	}
	return lines[0], lines[1], nil
}

func (e *cmdEnv) rotateKey(ctx context.Context, oldH, newH authz.KeyHash, newID string, grace time.Duration, output string) error {
	return e.withBucket(ctx, true, func(b bucket) error {
		r, err := b.Rotate(ctx, oldH, newH, newID, grace, time.Now())
		switch {
		case errors.Is(err, events.ErrKeyExists):
			return errors.New("the new key exists already (or has a revocation tombstone): rotate to a key never used")
		case err != nil:
			return keyError(err)
		}
		return printOne(e.stdout, output, rotateOut{
			OldKeyHash: oldH.String(), OldKeyID: r.OldKeyID, NewKeyHash: newH.String(), NewKeyID: r.NewKeyID,
			AccountID: r.AccountID, OldExpiresAt: authz.FormatExpiry(r.OldExpiresAt),
			OldRevision: r.OldRevision, NewRevision: r.NewRevision,
		})
	})
}
