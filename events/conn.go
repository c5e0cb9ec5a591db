package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connection defaults, chosen to notice a dead link within about 20 s and to
// come back within a quarter second of the server.
const (
	DefaultURL            = nats.DefaultURL // nats://127.0.0.1:4222
	DefaultClientName     = "footstep-authz"
	DefaultConnectTimeout = 2 * time.Second
	DefaultDrainTimeout   = 5 * time.Second
	reconnectWait         = 250 * time.Millisecond
	reconnectJitter       = 100 * time.Millisecond
	pingInterval          = 10 * time.Second
	maxPingsOutstanding   = 2
)

// ConnConfig says where and how to connect. Every field is optional.
type ConnConfig struct {
	// URLs are the servers to try; default DefaultURL. An entry may itself
	// be a comma-separated list.
	URLs []string
	// Name is the client name shown by the server; default DefaultClientName.
	Name string
	// CredsFile is a NATS credentials file (JWT and seed).
	CredsFile string
	// NKeySeedFile is a file holding an nkey user seed.
	NKeySeedFile string
	// Token is an authentication token.
	Token string
	// User and Password authenticate with a user name and password.
	User, Password string
	// TLSCAFile is a PEM file of CAs that the server's certificate must chain to.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key.
	TLSCertFile, TLSKeyFile string
	// ConnectTimeout bounds each dial; default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// DrainTimeout bounds Close; default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger receives connection state changes; nil discards them.
	Logger *slog.Logger
}

// Conn is a NATS connection that reconnects forever and tells its consumers
// when it has reconnected.
type Conn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	drain  time.Duration
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	subs map[int]chan struct{}
	next int
}

// Connect dials NATS. The first connection is not retried: a refused
// connection, bad credentials or nothing listening fail at once with an
// error. Once connected, the connection reconnects without limit.
func Connect(ctx context.Context, cfg ConnConfig) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	c := &Conn{
		log:    cfg.Logger,
		drain:  cmp.Or(cfg.DrainTimeout, DefaultDrainTimeout),
		closed: make(chan struct{}),
		subs:   make(map[int]chan struct{}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	opts, err := c.options(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	urls := strings.Join(cfg.URLs, ",")
	if urls == "" {
		urls = DefaultURL
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redactURLs(urls), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect nats: jetstream: %w", err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

func (c *Conn) options(cfg ConnConfig) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(cmp.Or(cfg.Name, DefaultClientName)),
		nats.Timeout(cmp.Or(cfg.ConnectTimeout, DefaultConnectTimeout)),
		nats.RetryOnFailedConnect(false),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitter),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOutstanding),
		nats.DrainTimeout(c.drain),
		nats.DisconnectErrHandler(c.onDisconnect),
		nats.ReconnectHandler(c.onReconnect),
		nats.ClosedHandler(c.onClosed),
		nats.ErrorHandler(c.onAsyncError),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	return append(opts, auth...), nil
}

func authOptions(cfg ConnConfig) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.User != "" || cfg.Password != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("tls client certificate and key go together")
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	return opts, nil
}

func (c *Conn) onDisconnect(_ *nats.Conn, err error) {
	c.log.Warn("nats disconnected", "err", err)
}

func (c *Conn) onReconnect(nc *nats.Conn) {
	c.log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default: // one pending notification is enough
		}
	}
}

func (c *Conn) onClosed(*nats.Conn) {
	c.log.Info("nats connection closed")
	c.once.Do(func() { close(c.closed) })
}

func (c *Conn) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	c.log.Warn("nats async error", "subject", subject, "err", err)
}

// Reconnected returns a channel that receives a value after each reconnect
// (several reconnects before a receive coalesce into one) and a func that
// stops the notifications. Each caller gets its own channel.
func (c *Conn) Reconnected() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	id := c.next
	c.next++
	c.subs[id] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

// Connected reports whether the connection is up right now.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns a JetStream context on the connection.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Close drains the connection, waiting at most the drain timeout, then closes it.
func (c *Conn) Close() {
	if !c.nc.IsConnected() {
		// Nothing can be drained through a link that is down.
		c.nc.Close()
		return
	}
	if err := c.nc.Drain(); err != nil {
		c.nc.Close()
	}
	select {
	case <-c.closed:
	case <-time.After(c.drain + time.Second):
		c.nc.Close()
	}
}

// redactURLs drops user info from URLs shown in errors.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			scheme, _, found := strings.Cut(u, "://")
			if !found {
				scheme = ""
			} else {
				scheme += "://"
			}
			parts[i] = scheme + "[REDACTED]" + u[at:]
		}
	}
	return strings.Join(parts, ",")
}
