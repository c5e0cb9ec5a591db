package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// opTimeout bounds one command's NATS work (not watch).
const opTimeout = 10 * time.Second

// envPrefix starts the environment variable of every connection flag, as
// for footstep-authz: --nats-url is also FOOTSTEP_NATS_URL.
const envPrefix = "FOOTSTEP_"

// globals are the connection flags, accepted before and after the command.
type globals struct {
	url, bucket                    string
	creds, nkey, token, user, pass string
	tlsCA, tlsCert, tlsKey         string
}

// connFlag is one connection flag.
type connFlag struct {
	name, usage string
	dst         *string
	def         string
}

func (g *globals) flags() []connFlag {
	return []connFlag{
		{"nats-url", "NATS server URLs, comma-separated (env FOOTSTEP_NATS_URL, then NATS_URL)", &g.url, events.DefaultURL},
		{"kv-bucket", "key-value bucket of key and account records (env FOOTSTEP_KV_BUCKET)", &g.bucket, events.DefaultBucket},
		{"nats-creds", "NATS credentials file, JWT and nkey seed (env FOOTSTEP_NATS_CREDS)", &g.creds, ""},
		{"nats-nkey", "file holding a NATS nkey user seed (env FOOTSTEP_NATS_NKEY)", &g.nkey, ""},
		{"nats-token", "NATS authentication token (env FOOTSTEP_NATS_TOKEN)", &g.token, ""},
		{"nats-user", "NATS user name (env FOOTSTEP_NATS_USER)", &g.user, ""},
		{"nats-password", "NATS password (env FOOTSTEP_NATS_PASSWORD)", &g.pass, ""},
		{"nats-tls-ca", "PEM CA bundle that the NATS server certificate must chain to (env FOOTSTEP_NATS_TLS_CA)", &g.tlsCA, ""},
		{"nats-tls-cert", "PEM client certificate for NATS (env FOOTSTEP_NATS_TLS_CERT)", &g.tlsCert, ""},
		{"nats-tls-key", "PEM key of the NATS client certificate (env FOOTSTEP_NATS_TLS_KEY)", &g.tlsKey, ""},
	}
}

// flagAliases maps footstepctl's former flag names, still accepted and not
// shown in help, to the names footstep-authz uses.
var flagAliases = map[string]string{
	"bucket": "kv-bucket", "creds": "nats-creds", "nkey": "nats-nkey", "token": "nats-token",
	"user": "nats-user", "password": "nats-password",
	"tls-ca": "nats-tls-ca", "tls-cert": "nats-tls-cert", "tls-key": "nats-tls-key",
}

// aliasFlags is the flag name normalization that accepts the former names.
func aliasFlags(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if n, ok := flagAliases[name]; ok {
		return pflag.NormalizedName(n)
	}
	return pflag.NormalizedName(name)
}

func (g *globals) register(fs *pflag.FlagSet) {
	for _, f := range g.flags() {
		fs.StringVar(f.dst, f.name, f.def, f.usage)
	}
}

// applyEnv sets every connection flag not given on the command line from
// its environment variable, when that is set. NATS_URL comes after
// FOOTSTEP_NATS_URL, as the nats CLI reads it.
func (g *globals) applyEnv(fs *pflag.FlagSet, getenv func(string) string) {
	for _, f := range g.flags() {
		if fl := fs.Lookup(f.name); fl != nil && fl.Changed {
			continue
		}
		v := getenv(envName(f.name))
		if v == "" && f.name == "nats-url" {
			v = getenv("NATS_URL")
		}
		if v != "" {
			*f.dst = v
		}
	}
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// cmdEnv is what every command runs with.
type cmdEnv struct {
	g              *globals
	root           *cobra.Command
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// connConfig resolves the connection flags and checks them.
func (e *cmdEnv) connConfig() (events.ConnConfig, error) {
	g := e.g
	g.applyEnv(e.root.PersistentFlags(), e.getenv)
	switch {
	case !events.ValidBucketName(g.bucket):
		return events.ConnConfig{}, fmt.Errorf("--kv-bucket: %w", events.ErrBucketName)
	case (g.tlsCert == "") != (g.tlsKey == ""):
		return events.ConnConfig{}, fmt.Errorf("--nats-tls-cert and --nats-tls-key go together")
	}
	return events.ConnConfig{
		URLs: []string{g.url}, Name: "footstepctl",
		CredsFile: g.creds, NKeySeedFile: g.nkey, Token: g.token, User: g.user, Password: g.pass,
		TLSCAFile: g.tlsCA, TLSCertFile: g.tlsCert, TLSKeyFile: g.tlsKey,
	}, nil
}

// connect connects to NATS with the global flags.
func (e *cmdEnv) connect(ctx context.Context) (*events.Conn, error) {
	cfg, err := e.connConfig()
	if err != nil {
		return nil, err
	}
	return events.Connect(ctx, cfg)
}

// open connects and binds the bucket; create makes a missing bucket, for
// commands that write.
func (e *cmdEnv) open(ctx context.Context, create bool) (*events.Conn, jetstream.KeyValue, error) {
	conn, err := e.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	var kv jetstream.KeyValue
	if create {
		kv, err = events.OpenBucket(ctx, conn.JetStream(), events.BucketConfig{Name: e.g.bucket})
	} else if kv, err = conn.JetStream().KeyValue(ctx, e.g.bucket); err != nil {
		err = fmt.Errorf("open bucket %s: %w", e.g.bucket, err)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, kv, nil
}

// bucket is the records bucket as a command works on it: a Publisher for
// the records, and the raw key-value bucket for those that do not decode
// (unreadable.go).
type bucket struct {
	*events.Publisher
	kv jetstream.KeyValue
}

// withBucket connects, runs f on the bucket with a bounded context, and
// closes the connection.
func (e *cmdEnv) withBucket(ctx context.Context, create bool, f func(bucket) error) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	conn, kv, err := e.open(ctx, create)
	if err != nil {
		return err
	}
	defer conn.Close()
	return f(bucket{Publisher: events.NewPublisher(conn.JetStream(), kv), kv: kv})
}
