package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/footstep/authz/authz"
	"github.com/spf13/cobra"
)

// apiKeyEnv holds the key when neither --key nor --hash is given.
const apiKeyEnv = "FOOTSTEP_API_KEY"

// argvKeyWarning is printed when a key is typed on the command line.
const argvKeyWarning = "footstepctl: warning: a key given after --key is now in your shell history and visible in ps output;" +
	" pass it on standard input (--key -) or in " + apiKeyEnv + " instead\n"

// keyFlags names a key by plaintext (--key, "-" for stdin, else
// FOOTSTEP_API_KEY) or by hash (--hash).
type keyFlags struct{ key, hash string }

func (k *keyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.key, "key", "",
		"the API key; - reads it from the first line of standard input; default $"+apiKeyEnv+
			" (a key typed here stays in shell history and ps output)")
	cmd.Flags().StringVar(&k.hash, "hash", "", "the key's SHA-256 as 64 lowercase hex digits, instead of the key")
}

// keyCommand is leaf.command for a command that acts on one key, named with
// --key or --hash: run gets the key's hash.
func (l leaf) keyCommand(e *cmdEnv, run func(ctx context.Context, h authz.KeyHash, output string) error) *cobra.Command {
	var k keyFlags
	cmd := l.command(func(cmd *cobra.Command, output string) error {
		h, err := k.resolve(e)
		if err != nil {
			return err
		}
		return run(cmd.Context(), h, output)
	})
	k.register(cmd)
	return cmd
}

// resolve returns the key's hash. The plaintext key is hashed and dropped.
func (k *keyFlags) resolve(e *cmdEnv) (authz.KeyHash, error) {
	switch {
	case k.key != "" && k.hash != "":
		return authz.KeyHash{}, errors.New("give --key or --hash, not both")
	case k.hash != "":
		h, err := authz.ParseKeyHash(k.hash)
		if err != nil {
			return h, fmt.Errorf("--hash: %w", err)
		}
		return h, nil
	case k.key == "-":
		return readKey(e.stdin)
	case k.key != "":
		fmt.Fprint(e.stderr, argvKeyWarning)
		return hashKey("--key", k.key)
	}
	if v := e.getenv(apiKeyEnv); v != "" {
		return hashKey(apiKeyEnv, strings.TrimSpace(v))
	}
	return authz.KeyHash{}, errors.New("missing key: give --key - (standard input), set " + apiKeyEnv + ", or give --hash")
}

// readKey reads the key from the first line of r.
func readKey(r io.Reader) (authz.KeyHash, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return authz.KeyHash{}, errors.New("--key -: no key on standard input")
	}
	return hashKey("--key -", strings.TrimSpace(line))
}

func hashKey(source, plain string) (authz.KeyHash, error) {
	key, err := authz.ParseAPIKey(plain)
	if err != nil {
		return authz.KeyHash{}, fmt.Errorf("%s: %w", source, err)
	}
	return key.Hash(), nil
}
