package main

import (
	"context"
	"strconv"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func init() {
	register("key", newKeyStateCmd("suspend", "Suspend a key: it answers 403 key_suspended until reactivated",
		func(p *events.Publisher) keyOp { return p.Suspend }))
	register("key", newKeyStateCmd("reactivate", "Reactivate a suspended key (refused for a revoked key)",
		func(p *events.Publisher) keyOp { return p.Reactivate }))
	register("key", newKeyStateCmd("revoke", "Revoke a key for good: revoked is terminal, only key delete follows",
		func(p *events.Publisher) keyOp { return p.Revoke }))
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

// newKeyStateCmd returns a command that applies one change to an existing
// key, revision-checked.
func newKeyStateCmd(op, short string, change func(*events.Publisher) keyOp) commandFactory {
	return func(e *cmdEnv) *cobra.Command {
		var k keyFlags
		var output string
		cmd := &cobra.Command{
			Use:   op,
			Short: short,
			Example: "  printf '%s\\n' \"$KEY\" | footstepctl key " + op + " --key -\n" +
				"  FOOTSTEP_API_KEY=... footstepctl key " + op + "\n" +
				"  footstepctl key " + op + " --hash 5e8f... -o table",
			Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runKeyChange(cmd.Context(), e, op, &k, output, change)
			},
		}
		k.register(cmd)
		addOutputFlag(cmd, &output)
		return cmd
	}
}

func runKeyChange(ctx context.Context, e *cmdEnv, op string, k *keyFlags, output string, change func(*events.Publisher) keyOp) error {
	h, err := k.resolve(e)
	if err != nil {
		return err
	}
	return e.withPublisher(ctx, true, func(p *events.Publisher, _ jetstream.KeyValue) error {
		rev, err := change(p)(ctx, h)
		if err != nil {
			return keyError(err)
		}
		return printOne(e.stdout, output, changeOut{Op: op, KeyHash: h.String(), Revision: rev})
	})
}
