package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/events"
)

// envPrefix starts the environment variable of every flag: --grpc-addr is
// also FOOTSTEP_GRPC_ADDR.
const envPrefix = "FOOTSTEP_"

// Defaults of the flags that DESIGN.md names.
const (
	defaultGRPCAddr         = ":9001"
	defaultHTTPAddr         = ":9002"
	defaultAdminAddr        = ":9003"
	defaultEmbeddedNATSAddr = "127.0.0.1:4222"
	defaultEmbeddedNATSDir  = "./data/nats"
	defaultShutdownTimeout  = 10 * time.Second
)

// config is everything footstep-authz can be told at start.
type config struct {
	GRPCAddr         string
	HTTPAddr         string
	AdminAddr        string
	NATSURL          string
	EmbeddedNATSAddr string
	EmbeddedNATSDir  string
	KVBucket         string
	KVReplicas       int
	NATS             events.ConnConfig
	CacheSize        byteSize
	NegativeTTL      time.Duration
	LookupTimeout    time.Duration
	ShutdownTimeout  time.Duration
	LogLevel         slog.Level
	LogFormat        string
	Demo             bool
}

// parseConfig reads flags from args, then FOOTSTEP_* variables for every flag
// not given on the command line. It returns flag.ErrHelp for --help.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{CacheSize: cache.DefaultMaxBytes, LogLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("footstep-authz", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", defaultGRPCAddr, "listen address of the ext_authz v3 gRPC service and grpc.health.v1")
	fs.StringVar(&c.HTTPAddr, "http-addr", defaultHTTPAddr, "listen address of the HTTP authorization service; empty turns it off")
	fs.StringVar(&c.AdminAddr, "admin-addr", defaultAdminAddr, "listen address of /metrics, /healthz and /readyz")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server URLs, comma-separated; empty starts an embedded NATS server with JetStream")
	fs.StringVar(&c.EmbeddedNATSAddr, "embedded-nats-addr", defaultEmbeddedNATSAddr, "listen address of the embedded NATS server")
	fs.StringVar(&c.EmbeddedNATSDir, "embedded-nats-dir", defaultEmbeddedNATSDir, "JetStream storage directory of the embedded NATS server")
	fs.StringVar(&c.KVBucket, "kv-bucket", events.DefaultBucket, "JetStream key-value bucket of key and account states (created if missing)")
	fs.IntVar(&c.KVReplicas, "kv-replicas", 1, "replicas of the bucket when this process creates it (3 on a NATS cluster)")
	fs.StringVar(&c.NATS.CredsFile, "nats-creds", "", "NATS credentials file (JWT and nkey seed)")
	fs.StringVar(&c.NATS.NKeySeedFile, "nats-nkey", "", "file holding a NATS nkey user seed")
	fs.StringVar(&c.NATS.Token, "nats-token", "", "NATS authentication token")
	fs.StringVar(&c.NATS.User, "nats-user", "", "NATS user name")
	fs.StringVar(&c.NATS.Password, "nats-password", "", "NATS password")
	fs.StringVar(&c.NATS.TLSCAFile, "nats-tls-ca", "", "PEM CA bundle that the NATS server certificate must chain to")
	fs.StringVar(&c.NATS.TLSCertFile, "nats-tls-cert", "", "PEM client certificate for NATS")
	fs.StringVar(&c.NATS.TLSKeyFile, "nats-tls-key", "", "PEM key of the NATS client certificate")
	fs.Var(&c.CacheSize, "cache-size", "memory budget of the key and account cache, e.g. 256MiB")
	fs.DurationVar(&c.NegativeTTL, "negative-ttl", cache.DefaultNegativeTTL, "how long an unknown key is remembered as unknown")
	fs.DurationVar(&c.LookupTimeout, "lookup-timeout", cache.DefaultLoadTimeout, "bound on one key-value lookup on a cache miss")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long a stop waits for calls in flight")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.BoolVar(&c.Demo, "demo", false, "seed demo keys, one per state, and print them (embedded NATS only)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if c.NATSURL != "" {
		c.NATS.URLs = []string{c.NATSURL}
	}
	return c, c.validate()
}

// applyEnv sets every flag not given on the command line from its
// FOOTSTEP_* variable, when that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := getenv(name)
		if err != nil || given[f.Name] || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s: %w", name, e)
		}
	})
	return err
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *config) validate() error {
	for _, a := range []struct{ name, addr string }{
		{"grpc-addr", c.GRPCAddr}, {"http-addr", c.HTTPAddr}, {"admin-addr", c.AdminAddr},
		{"embedded-nats-addr", c.EmbeddedNATSAddr},
	} {
		if a.addr == "" && a.name == "http-addr" {
			continue
		}
		if err := checkAddr(a.addr); err != nil {
			return fmt.Errorf("--%s %q: %w", a.name, a.addr, err)
		}
	}
	switch {
	case !events.ValidBucketName(c.KVBucket):
		return fmt.Errorf("--kv-bucket %q: want 1 to 64 of [A-Za-z0-9_-]", c.KVBucket)
	case c.KVReplicas < 1 || c.KVReplicas > 5:
		return fmt.Errorf("--kv-replicas %d: want 1 to 5", c.KVReplicas)
	case c.NegativeTTL <= 0 || c.LookupTimeout <= 0 || c.ShutdownTimeout <= 0:
		return errors.New("--negative-ttl, --lookup-timeout and --shutdown-timeout must be positive")
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("--log-format %q: want json or text", c.LogFormat)
	case c.Demo && c.NATSURL != "":
		return errors.New("--demo seeds keys into the embedded NATS server only; drop --nats-url")
	}
	return nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}
