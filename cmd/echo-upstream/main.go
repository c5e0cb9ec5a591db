// Command echo-upstream is the demo upstream for running footstep-authz behind Envoy:
// it answers every request with the request it received, headers included, as JSON,
// so that a user sees the identity headers footstep-authz added and the credential it
// removed. It listens on --addr (default 127.0.0.1:8081) and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/footstep/authz/internal/cli"
)

// defaultAddr is where envoy/envoy.yaml expects the upstream.
const defaultAddr = "127.0.0.1:8081"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch err := run(ctx, os.Args[1:], os.Stdout); {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "echo-upstream:", err)
		os.Exit(1)
	}
}

// buildVersion is set at build time (-ldflags "-X main.buildVersion=...").
var buildVersion string

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("echo-upstream", flag.ContinueOnError)
	fs.SetOutput(stdout) // --help is an answer, not an error
	addr := fs.String("addr", defaultAddr, "address to listen on")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, "echo-upstream", cli.Version(buildVersion))
		return nil
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	return serve(ctx, ln)
}

// serve answers on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintln(os.Stderr, "echo-upstream: listening on", ln.Addr())
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
