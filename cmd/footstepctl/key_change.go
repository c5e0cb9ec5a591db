package main

import (
	"context"
	"strconv"

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
}

// keyOp is one change of an existing key; it returns the new revision.
type keyOp func(context.Context, authz.KeyHash) (uint64, error)

// changeOut is the result of a key change.
type changeOut struct {
	Op       string `json:"op"`
	KeyHash  string `json:"key_hash"`
	Revision uint64 `json:"revision"`
}

func (c changeOut) header() []string { return []string{"OP", "KEY_HASH", "REVISION"} }
func (c changeOut) row() []string {
	return []string{c.Op, c.KeyHash, strconv.FormatUint(c.Revision, 10)}
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
