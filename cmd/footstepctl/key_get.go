package main

import (
	"context"
	"errors"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func init() { register("key", newKeyGetCmd) }

func newKeyGetCmd(e *cmdEnv) *cobra.Command {
	var k keyFlags
	var output string
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print a key's record and effective state",
		Long: `Print a key's record. Its state is the effective one: revoked when the key has a
revocation tombstone, whatever the record says (stored_state then shows what is
written). A record that does not decode is described by its KV entry (KV key,
revision, created time, size, why it does not decode; never its value) and the
command fails. last_used is when a footstep-authz replica last decided on the
key (from the footstep-usage bucket); empty when none recorded a use.`,
		Example: `  printf '%s\n' "$KEY" | footstepctl key get --key -
  FOOTSTEP_API_KEY=... footstepctl key get -o yaml
  footstepctl key get --hash 5e8f... -o table`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := k.resolve(e)
			if err != nil {
				return err
			}
			return e.withPublisher(cmd.Context(), false, func(p *events.Publisher, kv jetstream.KeyValue) error {
				return keyGet(cmd.Context(), e, p, kv, h, output)
			})
		},
	}
	k.register(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

func keyGet(ctx context.Context, e *cmdEnv, p *events.Publisher, kv jetstream.KeyValue, h authz.KeyHash, output string) error {
	v, err := p.InspectKey(ctx, h)
	switch {
	case errors.Is(err, events.ErrBadRecord):
		raw, rerr := inspectRaw(ctx, kv, events.KeyKVKey(h), v.Stored.Revision, decodeKeyValue)
		if rerr != nil {
			return rerr
		}
		raw.Tombstone = v.Tombstone != nil
		if perr := printOne(e.stdout, output, raw); perr != nil {
			return perr
		}
		return keyError(err)
	case err != nil:
		return keyError(err)
	case v.Stored.Presence == authz.Absent:
		return errors.New("key not found (the tombstone of an earlier revocation remains: key delete clears it)")
	}
	return printOne(e.stdout, output, e.withLastUsed(ctx, h, viewOut(h, v)))
}
