package main

// key get and key put: a key's record read back and written, an unreadable
// one described (get) or replaced (put --force-overwrite).

import (
	"context"
	"errors"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/spf13/cobra"
)

func init() {
	register("key", newKeyGetCmd)
	register("key", newKeyPutCmd)
}

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

// keyPut holds the flags of key put besides the key and -o.
type keyPut struct {
	id, account, state string
	forceOverwrite     bool
}

func newKeyPutCmd(e *cmdEnv) *cobra.Command {
	var p keyPut
	cmd := leaf{
		use:   "put",
		short: "Create or replace a key's record (refused for a revoked key)",
		long: `Create or replace a key's record, checked against the KV revision so that two
writers cannot lose each other's change. A revoked key is never brought back:
its put is refused. A record that does not decode is replaced only with
--force-overwrite (still revision-checked); key delete removes it.`,
		example: `  read -rs KEY && printf '%s\n' "$KEY" | footstepctl key put --key - --account acct_9 --id key_123
  FOOTSTEP_API_KEY=... footstepctl key put --account acct_9 --state suspended
  footstepctl key put --hash 5e8f... --account acct_9 --force-overwrite`,
	}.keyCommand(e, func(ctx context.Context, h authz.KeyHash, output string) error {
		return p.run(ctx, e, h, output)
	})
	f := cmd.Flags()
	f.StringVar(&p.id, "id", "", `key id (default "key_" and the first 12 hex digits of the hash)`)
	f.StringVar(&p.account, "account", "", "account id (required)")
	f.StringVar(&p.state, "state", string(authz.StateActive), "active or suspended")
	f.BoolVar(&p.forceOverwrite, "force-overwrite", false, "replace a record that does not decode (revision-checked)")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(
		[]string{string(authz.StateActive), string(authz.StateSuspended)}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (p *keyPut) run(ctx context.Context, e *cmdEnv, h authz.KeyHash, output string) error {
	rec, err := putRecord(h, p.id, p.account, p.state)
	if err != nil {
		return err
	}
	return e.withBucket(ctx, true, func(b bucket) error {
		put := b.PutKey
		if p.forceOverwrite {
			put = b.overwriteUnreadable
		}
		rev, err := put(ctx, h, rec)
		if err != nil {
			return keyError(err)
		}
		return printOne(e.stdout, output, recordOut(h, rec, rev))
	})
}

func putRecord(h authz.KeyHash, id, account, state string) (authz.KeyRecord, error) {
	if id == "" {
		id = "key_" + h.String()[:12]
	}
	switch {
	case account == "":
		return authz.KeyRecord{}, errors.New("missing --account")
	case authz.CheckID("--account", account) != nil:
		return authz.KeyRecord{}, authz.CheckID("--account", account)
	case authz.CheckID("--id", id) != nil:
		return authz.KeyRecord{}, authz.CheckID("--id", id)
	case state != string(authz.StateActive) && state != string(authz.StateSuspended):
		return authz.KeyRecord{}, errors.New("--state: want active or suspended (use key revoke to revoke)")
	}
	return authz.KeyRecord{KeyID: id, AccountID: account, State: authz.KeyState(state)}, nil
}
