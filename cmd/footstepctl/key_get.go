package main

import (
	"context"
	"errors"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/spf13/cobra"
)

func init() { register("key", newKeyGetCmd) }

func newKeyGetCmd(e *cmdEnv) *cobra.Command {
	return leaf{
		use:   "get",
		short: "Print a key's record and effective state",
		long: `Print a key's record. Its state is the effective one: revoked when the key has a
revocation tombstone, whatever the record says (stored_state then shows what is
written). A record that does not decode is described by its KV entry (KV key,
revision, created time, size, why it does not decode; never its value) and the
command fails. last_used is when a footstep-authz replica last decided on the
key (from the footstep-usage bucket); empty when none recorded a use.`,
		example: `  printf '%s\n' "$KEY" | footstepctl key get --key -
  FOOTSTEP_API_KEY=... footstepctl key get -o yaml
  footstepctl key get --hash 5e8f... -o table`,
	}.keyCommand(e, func(ctx context.Context, h authz.KeyHash, output string) error {
		return e.withBucket(ctx, false, func(b bucket) error {
			return keyGet(ctx, e, b, h, output)
		})
	})
}

func keyGet(ctx context.Context, e *cmdEnv, b bucket, h authz.KeyHash, output string) error {
	v, err := b.InspectKey(ctx, h)
	switch {
	case errors.Is(err, events.ErrBadRecord):
		raw, rerr := b.inspectRaw(ctx, events.KeyKVKey(h), v.Stored.Revision, decodeKeyValue)
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
