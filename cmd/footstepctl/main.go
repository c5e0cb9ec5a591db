// Command footstepctl publishes key and account changes to NATS for
// footstep-authz: it puts, suspends, reactivates, revokes and deletes keys,
// sets account balances, reads records back, watches the bucket, and imports
// and exports its records. Keys are sent as SHA-256 hashes only; the
// plaintext key never leaves this process.
//
// Each command, or a family of small ones that share their code (the account
// commands; key suspend, reactivate and revoke), lives in a file of its own
// that registers the constructors (register, in root.go); the tree of
// commands is built anew for every run.
//
// Exit status: 0 on success, 1 on any error (bad flags or arguments, a
// refused change, a record not found or unreadable, NATS unreachable), with
// one line on standard error: "footstepctl: <command>: <what went wrong>".
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "footstepctl: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(exitError)
	}
	os.Exit(exitOK)
}
