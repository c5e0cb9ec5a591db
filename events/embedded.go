package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultEmbeddedAddr is where the embedded server listens by default.
const DefaultEmbeddedAddr = "127.0.0.1:4222"

// DefaultReadyTimeout bounds how long StartEmbedded waits for the server.
const DefaultReadyTimeout = 10 * time.Second

// ErrNotReady is returned when the embedded server does not accept
// connections within the ready timeout.
var ErrNotReady = errors.New("embedded nats server not ready")

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	// Addr is host:port to listen on; default DefaultEmbeddedAddr. A port of
	// 0 or -1 picks a free port (see Embedded.ClientURL).
	Addr string
	// Dir is where JetStream stores its files; required.
	Dir string
	// ServerName names the server in logs and cluster info; default "footstep-authz".
	ServerName string
	// User and Password, when both set, are required of every client.
	User, Password string
	// Token, when set, is required of every client; not with User.
	Token string
	// ReadyTimeout bounds the wait for the server to accept connections;
	// default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives the server's own log lines; nil keeps the server silent.
	Logger *slog.Logger
}

// Embedded is a running in-process nats-server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a nats-server with JetStream in this process and waits
// until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	opts, err := cfg.serverOptions()
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if err := portFree(opts.Host, opts.Port); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(slogAdapter{cfg.Logger}, false, false, false)
	}
	srv.Start()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats on %s: %w after %s", opts.Host, ErrNotReady, timeout)
	}
	return &Embedded{srv: srv}, nil
}

// ErrAddrInUse is returned when the embedded server's address is taken.
var ErrAddrInUse = errors.New("address already in use: another footstep-authz or NATS server runs there (stop it, choose another --embedded-nats-addr, or connect to it with --nats-url)")

// portFree fails at once, naming the address, when something listens there:
// nats-server would otherwise retry its listener until the ready timeout.
func portFree(host string, port int) error {
	if port <= 0 {
		return nil
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("embedded nats on %s: %w", addr, ErrAddrInUse)
		}
		return fmt.Errorf("embedded nats on %s: %w", addr, err)
	}
	return l.Close()
}

func (cfg EmbeddedConfig) serverOptions() (*server.Options, error) {
	if cfg.Dir == "" {
		return nil, errors.New("store dir is required")
	}
	if cfg.Token != "" && cfg.User != "" {
		return nil, errors.New("set either a token or a user, not both")
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return nil, errors.New("user and password go together")
	}
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	name := cfg.ServerName
	if name == "" {
		name = "footstep-authz"
	}
	return &server.Options{
		ServerName:    name,
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      cfg.Dir,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
		NoLog:         cfg.Logger == nil,
		NoSigs:        true,
	}, nil
}

// splitAddr parses host:port; port 0 and -1 both mean a random port, because
// nats-server reads 0 as its default port 4222.
func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("listen address %q: bad port", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ClientURL returns the URL clients connect to, with the port actually bound.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Addr returns the host:port actually bound, to restart on the same port.
func (e *Embedded) Addr() string {
	a := e.srv.Addr()
	if a == nil {
		return ""
	}
	return a.String()
}

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// slogAdapter gives the server's printf-style logger a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(f string, v ...any) { a.log(slog.LevelInfo, f, v) }
func (a slogAdapter) Warnf(f string, v ...any)   { a.log(slog.LevelWarn, f, v) }
func (a slogAdapter) Fatalf(f string, v ...any)  { a.log(slog.LevelError, f, v) }
func (a slogAdapter) Errorf(f string, v ...any)  { a.log(slog.LevelError, f, v) }
func (a slogAdapter) Debugf(f string, v ...any)  { a.log(slog.LevelDebug, f, v) }
func (a slogAdapter) Tracef(f string, v ...any)  { a.log(slog.LevelDebug, f, v) }

// log writes one message of the server at level.
func (a slogAdapter) log(level slog.Level, f string, v []any) {
	a.l.Log(context.Background(), level, fmt.Sprintf(f, v...), "component", "nats-server")
}
