// Command footstep-authz serves Envoy's external authorization for the
// Footstep API: it answers ext_authz Check calls (gRPC) and HTTP
// authorization requests from an in-memory cache of API key states, kept
// fresh from a NATS JetStream key-value bucket.
//
// Every flag can also be set from the environment as FOOTSTEP_<FLAG>, for
// example FOOTSTEP_NATS_URL for --nats-url. Run with --help for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/footstep/authz/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintf(os.Stderr, "footstep-authz: %v\n", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until ctx ends and it has stopped. --help
// prints to stdout and returns flag.ErrHelp; logs go to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.ShowVersion {
		fmt.Fprintf(stdout, "footstep-authz %s\n", version())
		return nil
	}
	cfg.Logger, cfg.Stdout, cfg.Version = newLogger(cfg, stderr), stdout, version()
	s, err := server.New(ctx, cfg.Config)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
