package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/cli"
	"github.com/footstep/authz/internal/server"
)

// envPrefix starts the environment variable of every flag: --grpc-addr is
// also FOOTSTEP_GRPC_ADDR.
const envPrefix = "FOOTSTEP_"

// config is the server's configuration plus what only the command uses.
type config struct {
	server.Config
	LogLevel    slog.Level
	LogFormat   string
	ShowVersion bool
}

// parseConfig reads flags from args, then FOOTSTEP_* variables for every flag
// not given on the command line. For --help it writes the usage to usage and
// returns flag.ErrHelp. Every error is one line.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := defaultConfig()
	fs := c.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, usage)
			return nil, err
		}
		return nil, flagError(err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --; see --help)", authz.Clip(fs.Arg(0)))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	// The runtime reads GOMEMLIMIT and GOGC itself; without them the server
	// derives a limit and sets its own collector target.
	c.DeriveMemoryLimit = getenv("GOMEMLIMIT") == ""
	c.SetGCPercent = getenv("GOGC") == ""
	return c, c.validate()
}

// flagError rewrites the flag package's errors in this command's style:
// flags named with two dashes, the value first, then what is wanted.
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("unknown flag --%s (see --help)", strings.TrimPrefix(name, "-"))
	}
	var value, name string
	if _, scanErr := fmt.Sscanf(msg, "invalid value %q for flag -%s", &value, &name); scanErr == nil {
		name = strings.TrimSuffix(name, ":")
		_, why, _ := strings.Cut(msg, ": ")
		return fmt.Errorf("--%s %q: %s", name, authz.Clip(value), why)
	}
	return err
}

// defaultConfig returns the defaults of the fields that flag.Var flags set;
// flagSet sets the others.
func defaultConfig() *config {
	return &config{Config: server.DefaultConfig(), LogLevel: slog.LevelInfo}
}

// flagSet binds every flag to a field of c; the field's value before is the
// default of a flag.Var flag.
func (c *config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("footstep-authz", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned in one line; --help is printed by parseConfig
	fs.Usage = func() {}
	fs.StringVar(&c.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "listen address of the ext_authz v3 gRPC service and grpc.health.v1")
	fs.StringVar(&c.HTTPAddr, "http-addr", server.DefaultHTTPAddr, "listen address of the HTTP authorization service; empty turns it off")
	fs.StringVar(&c.HTTPPathPrefix, "http-path-prefix", "", "path prefix stripped from the HTTP service's request path before it is read as the original request: set it to Envoy http_service's path_prefix")
	fs.StringVar(&c.AdminAddr, "admin-addr", server.DefaultAdminAddr, "listen address of /metrics, /healthz and /readyz (plain HTTP: keep it on a private network)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server URLs, comma-separated; empty starts an embedded NATS server with JetStream")
	fs.StringVar(&c.EmbeddedNATSAddr, "embedded-nats-addr", server.DefaultEmbeddedNATSAddr, "listen address of the embedded NATS server")
	fs.StringVar(&c.EmbeddedNATSDir, "embedded-nats-dir", server.DefaultEmbeddedNATSDir, "JetStream storage directory of the embedded NATS server")
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
	fs.Var(cli.ByteSize{N: &c.CacheSize}, "cache-size", "memory budget of the key and account cache, e.g. 256MiB")
	fs.Var(cli.Duration{D: &c.NegativeTTL}, "negative-ttl", "how long an unknown key is remembered as unknown")
	fs.Var(cli.Duration{D: &c.LookupTimeout}, "lookup-timeout", "bound on one key-value lookup on a cache miss")
	fs.Float64Var(&c.LookupBudget, "max-kv-lookups-per-second", server.DefaultLookupBudget, "bound on key-value lookups for cache misses, so that a client spraying unknown keys cannot flood NATS; a miss past it is answered 503 (0: no bound)")
	fs.Var(cli.Duration{D: &c.ShutdownTimeout}, "shutdown-timeout", "how long a stop waits for calls in flight")
	fs.Var(cli.Duration{D: &c.MaxStaleness}, "max-staleness", "how long cached states are served without JetStream confirming they are current (a stream probe every 200ms); then --stale-policy applies (at least 1s)")
	fs.StringVar(&c.StalePolicy, "stale-policy", server.StaleDeny, "past --max-staleness: deny (answer 503 authz_unavailable and report not ready) or serve (keep serving cached states, raise footstep_authz_stale)")
	fs.StringVar(&c.Mode, "mode", server.ModeEnforce, "enforce, or shadow: evaluate every request, allow it, and report what would have been denied")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM server certificate (chain) for the gRPC and HTTP ports; reloaded when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM key of --tls-cert; reloaded when the file changes")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates signed by it on the gRPC and HTTP ports (mutual TLS); reloaded when the file changes")
	fs.Var(cli.LogLevel{L: &c.LogLevel}, "log-level", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.BoolVar(&c.Demo, "demo", false, "seed demo keys, one per state, and print them (embedded NATS only)")
	fs.BoolVar(&c.UsageTracking, "usage-tracking", true, "record when each key was last used and how often by decision code, and publish it every --usage-interval (footstep.events.key_used and the footstep-usage bucket); false turns it off")
	fs.Var(cli.Duration{D: &c.UsageInterval}, "usage-interval", "how often key usage is published: at most one summary per key used in the interval (1s to 24h)")
	fs.BoolVar(&c.GRPCReflection, "grpc-reflection", false, "serve gRPC server reflection, so that tools such as grpcurl need no proto files")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go runtime profiles under /debug/pprof/ on --admin-addr (for profiling under load; keep the admin port private)")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")
	return fs
}

// applyEnv sets every flag not given on the command line from its
// FOOTSTEP_* variable, when that is set. Errors name the variable, never its
// value, which may be a secret.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := getenv(name)
		if err != nil || given[f.Name] || v == "" || f.Name == "version" {
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

// printUsage lists every flag with its environment variable and default,
// empty defaults included.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: footstep-authz [flags]\n\n")
	fmt.Fprintf(w, "Serves Envoy ext_authz (gRPC and HTTP) for Footstep API keys, from a cache fed by NATS.\n")
	fmt.Fprintf(w, "Every flag can also be set from the environment: --grpc-addr as %s.\n\nFlags:\n", envName("grpc-addr"))
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			fmt.Fprintf(w, "  --version\n")
			fmt.Fprintf(w, "        %s\n", f.Usage)
			return
		}
		fmt.Fprintf(w, "  --%s (env %s, default %q)\n", f.Name, envName(f.Name), f.DefValue)
		fmt.Fprintf(w, "        %s\n", f.Usage)
	})
}
