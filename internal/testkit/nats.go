package testkit

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReady bounds the wait for a started nats-server to accept connections:
// a restarted cluster member recovering its store under two test suites on
// two cores has taken more than 10 s.
const natsReady = 30 * time.Second

// NATSOption changes the options of an embedded nats-server before it
// first starts.
type NATSOption func(*server.Options)

// WithUser requires every client to log in as user with password.
func WithUser(user, password string) NATSOption {
	return func(o *server.Options) { o.Username, o.Password = user, password }
}

// NATS is one embedded nats-server with JetStream on 127.0.0.1, which a test
// can stop and start again on the same port and store.
type NATS struct {
	node
}

// StartNATS starts a nats-server with JetStream on a free loopback port
// (freePort) and a store in a temporary directory. It is stopped when the test ends.
func StartNATS(tb testing.TB, opts ...NATSOption) *NATS {
	tb.Helper()
	o := &server.Options{
		// A fixed port, so that restarts listen where the first start did.
		ServerName: "testkit", Host: "127.0.0.1", Port: freePort(tb),
		JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true,
	}
	for _, opt := range opts {
		opt(o)
	}
	n := &NATS{node{tb: tb, opts: o}}
	n.Start()
	tb.Cleanup(n.Stop)
	return n
}

// URL is the server's client URL; it stays the same across restarts.
func (n *NATS) URL() string { return n.node.url() }

// Start starts the server again after Stop, on the same port and store.
func (n *NATS) Start() {
	n.tb.Helper()
	n.node.start()
}

// Stop shuts the server down and waits until it is down; stopping a stopped
// server does nothing.
func (n *NATS) Stop() { n.node.stop() }

// Server is the running nats-server, nil while stopped.
func (n *NATS) Server() *server.Server { return n.srv }

// node is a nats-server that starts and stops with the same options.
type node struct {
	tb   testing.TB
	opts *server.Options
	srv  *server.Server // nil while stopped
}

func (n *node) start() {
	n.tb.Helper()
	if n.srv != nil {
		n.tb.Fatalf("nats-server %s: already running", n.opts.ServerName)
	}
	srv, err := server.NewServer(n.opts.Clone())
	if err != nil {
		n.tb.Fatalf("nats-server %s: %v", n.opts.ServerName, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReady) {
		srv.Shutdown()
		srv.WaitForShutdown()
		n.tb.Fatalf("nats-server %s: not ready within %s", n.opts.ServerName, natsReady)
	}
	n.srv = srv
}

func (n *node) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *node) url() string { return fmt.Sprintf("nats://%s:%d", n.opts.Host, n.opts.Port) }
