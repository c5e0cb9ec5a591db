package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// keyFlags names a key by plaintext (--key, "-" for stdin) or by hash.
type keyFlags struct{ key, hash string }

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.key, "key", "", "the API key, or - to read it from standard input")
	fs.StringVar(&k.hash, "hash", "", "the key's SHA-256 as 64 lowercase hex digits")
}

// resolve returns the key's hash. The plaintext key is hashed and dropped.
func (k *keyFlags) resolve(stdin io.Reader) (authz.KeyHash, error) {
	switch {
	case k.key != "" && k.hash != "":
		return authz.KeyHash{}, errors.New("give --key or --hash, not both")
	case k.hash != "":
		h, err := authz.ParseKeyHash(k.hash)
		if err != nil {
			return h, fmt.Errorf("--hash: %w", err)
		}
		return h, nil
	case k.key == "":
		return authz.KeyHash{}, errors.New("missing --key or --hash")
	}
	plain := k.key
	if plain == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return authz.KeyHash{}, errors.New("--key -: no key on standard input")
		}
		plain = strings.TrimSpace(line)
	}
	key, err := authz.ParseAPIKey(plain)
	if err != nil {
		return authz.KeyHash{}, fmt.Errorf("--key: %w", err)
	}
	return key.Hash(), nil
}

func (e *cmdEnv) key(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("key: missing subcommand (put, suspend, reactivate, revoke, delete, get): %w", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "put":
		return e.keyPut(ctx, rest)
	case "get":
		return e.keyGet(ctx, rest)
	case "suspend", "reactivate", "revoke", "delete":
		return e.keyChange(ctx, sub, rest)
	default:
		return fmt.Errorf("key: unknown subcommand %q: %w", clip(sub), errUsage)
	}
}

func (e *cmdEnv) keyPut(ctx context.Context, args []string) error {
	var k keyFlags
	var id, account, state string
	fs := newFlagSet("key put")
	k.register(fs)
	fs.StringVar(&id, "id", "", `key id (default "key_" and the first 12 hex digits of the hash)`)
	fs.StringVar(&account, "account", "", "account id")
	fs.StringVar(&state, "state", string(authz.StateActive), "active or suspended")
	if err := e.parse(fs, args); err != nil || helpAsked(args) {
		return err
	}
	h, err := k.resolve(e.stdin)
	if err != nil {
		return fmt.Errorf("key put: %w", err)
	}
	rec, err := putRecord(h, id, account, state)
	if err != nil {
		return fmt.Errorf("key put: %w", err)
	}
	return e.withPublisher(ctx, true, func(p *events.Publisher) error {
		rev, err := p.PutKey(ctx, h, rec)
		if err != nil {
			return err
		}
		return e.printKey(h, rec, rev)
	})
}

func putRecord(h authz.KeyHash, id, account, state string) (authz.KeyRecord, error) {
	if id == "" {
		id = "key_" + h.String()[:12]
	}
	switch {
	case account == "":
		return authz.KeyRecord{}, errors.New("missing --account")
	case !authz.ValidID(account):
		return authz.KeyRecord{}, errors.New("--account: want 1 to 64 of [A-Za-z0-9_-]")
	case !authz.ValidID(id):
		return authz.KeyRecord{}, errors.New("--id: want 1 to 64 of [A-Za-z0-9_-]")
	case state != string(authz.StateActive) && state != string(authz.StateSuspended):
		return authz.KeyRecord{}, errors.New("--state: want active or suspended (use key revoke to revoke)")
	}
	return authz.KeyRecord{KeyID: id, AccountID: account, State: authz.KeyState(state)}, nil
}

func (e *cmdEnv) keyChange(ctx context.Context, op string, args []string) error {
	var k keyFlags
	fs := newFlagSet("key " + op)
	k.register(fs)
	if err := e.parse(fs, args); err != nil || helpAsked(args) {
		return err
	}
	h, err := k.resolve(e.stdin)
	if err != nil {
		return fmt.Errorf("key %s: %w", op, err)
	}
	return e.withPublisher(ctx, true, func(p *events.Publisher) error {
		change := map[string]func(context.Context, authz.KeyHash) (uint64, error){
			"suspend": p.Suspend, "reactivate": p.Reactivate, "revoke": p.Revoke, "delete": p.DeleteKey,
		}[op]
		rev, err := change(ctx, h)
		if errors.Is(err, events.ErrNotFound) {
			return errors.New("key not found")
		}
		if err != nil {
			return err
		}
		return writeJSON(e.stdout, map[string]any{"op": op, "key_hash": h.String(), "revision": rev})
	})
}

func (e *cmdEnv) keyGet(ctx context.Context, args []string) error {
	var k keyFlags
	fs := newFlagSet("key get")
	k.register(fs)
	if err := e.parse(fs, args); err != nil || helpAsked(args) {
		return err
	}
	h, err := k.resolve(e.stdin)
	if err != nil {
		return fmt.Errorf("key get: %w", err)
	}
	return e.withPublisher(ctx, false, func(p *events.Publisher) error {
		v, err := p.InspectKey(ctx, h)
		switch {
		case errors.Is(err, events.ErrNotFound):
			return errors.New("key not found")
		case err != nil:
			return err
		case v.Stored.Presence == authz.Absent:
			return errors.New("key not found (the tombstone of an earlier revocation remains: key delete clears it)")
		}
		return writeJSON(e.stdout, viewOut(h, v))
	})
}

func (e *cmdEnv) printKey(h authz.KeyHash, rec authz.KeyRecord, rev uint64) error {
	return writeJSON(e.stdout, keyOut{
		KeyHash: h.String(), KeyID: rec.KeyID, AccountID: rec.AccountID, State: string(rec.State), Revision: rev,
	})
}

// viewOut shows a key's effective state: revoked when it has a tombstone,
// whatever its record says.
func viewOut(h authz.KeyHash, v events.KeyView) keyOut {
	rec := v.Entry.Record
	out := keyOut{
		KeyHash: h.String(), KeyID: rec.KeyID, AccountID: rec.AccountID, State: string(rec.State), Revision: v.Entry.Revision,
		Tombstone: v.Tombstone != nil, TombstoneRevision: v.TombstoneRevision,
	}
	if stored := v.Stored.Record.State; stored != rec.State {
		out.StoredState = string(stored)
	}
	return out
}

type keyOut struct {
	KeyHash   string `json:"key_hash"`
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id"`
	State     string `json:"state"` // effective: revoked when the key has a tombstone
	Revision  uint64 `json:"revision"`
	// Tombstone is true when the key is revoked for good by a tombstone.
	Tombstone         bool   `json:"tombstone,omitempty"`
	TombstoneRevision uint64 `json:"tombstone_revision,omitempty"`
	// StoredState is the state written in the record when it differs from
	// State: a revival no replica has written back as revoked yet.
	StoredState string `json:"stored_state,omitempty"`
}
