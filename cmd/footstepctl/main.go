// Command footstepctl publishes key and account changes to NATS for
// footstep-authz: it puts, suspends, reactivates, revokes and deletes keys,
// sets account balances, reads records back and watches the bucket. Keys are
// sent as SHA-256 hashes only; the plaintext key never leaves this process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: footstepctl [global flags] <command> [flags]

commands:
  key put --key KEY --account ACCOUNT [--id KEY_ID] [--state active|suspended]
  key suspend|reactivate|revoke|delete (--key KEY | --hash HEX)
  key get (--key KEY | --hash HEX)        print the record as JSON
  account set-balance --account ACCOUNT --balance 12.50
  account get --account ACCOUNT
  watch                                   print each change as one JSON line
  import --file FILE [--start-line N]     load keys and balances from JSON Lines (- reads stdin)
  export [--file FILE]                    write every key and balance as JSON Lines

--key - reads the key from the first line of standard input.

global flags (also accepted after the command):
  --nats-url URL     NATS servers (default $NATS_URL, else nats://127.0.0.1:4222)
  --bucket NAME      key-value bucket (default footstep-keys)
  --creds FILE       NATS credentials file
  --nkey FILE        NATS nkey seed file
  --token TOKEN      NATS token
  --user USER        NATS user (with --password)
  --password PASS    NATS password
  --tls-ca FILE      CA certificates for the NATS server
  --tls-cert FILE    client certificate (with --tls-key)
  --tls-key FILE     client key
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "footstepctl: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// errUsage marks errors that come with the usage text.
var errUsage = errors.New("see footstepctl -h")

// run parses args and runs one command. It returns nil after printing help.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	g := defaultGlobals(getenv)
	fs := newFlagSet("footstepctl")
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		return helpOrError(err, stdout)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return fmt.Errorf("missing command: %w", errUsage)
	}
	env := &cmdEnv{g: g, stdin: stdin, stdout: stdout, stderr: stderr}
	switch rest[0] {
	case "key":
		return env.key(ctx, rest[1:])
	case "account":
		return env.account(ctx, rest[1:])
	case "watch":
		return env.watch(ctx, rest[1:])
	case "import":
		return env.importKeys(ctx, rest[1:])
	case "export":
		return env.exportRecords(ctx, rest[1:])
	case "help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q: %w", clip(rest[0]), errUsage)
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, printed once by main
	fs.Usage = func() {}
	return fs
}

// helpOrError prints the usage for -h and returns nil; other parse errors
// are returned.
func helpOrError(err error, stdout io.Writer) error {
	if errors.Is(err, flag.ErrHelp) {
		_, werr := io.WriteString(stdout, usage)
		return werr
	}
	return err
}

// clip shortens untrusted text quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
