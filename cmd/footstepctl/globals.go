package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

// opTimeout bounds one command's NATS work (not watch).
const opTimeout = 10 * time.Second

// globals are the connection flags, accepted before and after the command.
type globals struct {
	url, bucket                    string
	creds, nkey, token, user, pass string
	tlsCA, tlsCert, tlsKey         string
}

func defaultGlobals(getenv func(string) string) *globals {
	url := getenv("NATS_URL")
	if url == "" {
		url = events.DefaultURL
	}
	return &globals{url: url, bucket: events.DefaultBucket}
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "nats-url", g.url, "NATS servers")
	fs.StringVar(&g.bucket, "bucket", g.bucket, "key-value bucket")
	fs.StringVar(&g.creds, "creds", g.creds, "NATS credentials file")
	fs.StringVar(&g.nkey, "nkey", g.nkey, "NATS nkey seed file")
	fs.StringVar(&g.token, "token", g.token, "NATS token")
	fs.StringVar(&g.user, "user", g.user, "NATS user")
	fs.StringVar(&g.pass, "password", g.pass, "NATS password")
	fs.StringVar(&g.tlsCA, "tls-ca", g.tlsCA, "CA certificates file")
	fs.StringVar(&g.tlsCert, "tls-cert", g.tlsCert, "client certificate file")
	fs.StringVar(&g.tlsKey, "tls-key", g.tlsKey, "client key file")
}

// cmdEnv is what every command runs with.
type cmdEnv struct {
	g              *globals
	stdin          io.Reader
	stdout, stderr io.Writer
}

// parse parses a subcommand's flags (its own and the globals) and refuses
// positional arguments.
func (e *cmdEnv) parse(fs *flag.FlagSet, args []string) error {
	e.g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpOrError(err, e.stdout)
		}
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), clip(fs.Arg(0)))
	}
	if !events.ValidBucketName(e.g.bucket) {
		return fmt.Errorf("--bucket: %w", events.ErrBucketName)
	}
	return nil
}

// open connects and binds the bucket; create makes a missing bucket, for
// commands that write.
func (e *cmdEnv) open(ctx context.Context, create bool) (*events.Conn, jetstream.KeyValue, error) {
	g := e.g
	conn, err := events.Connect(ctx, events.ConnConfig{
		URLs: []string{g.url}, Name: "footstepctl",
		CredsFile: g.creds, NKeySeedFile: g.nkey, Token: g.token, User: g.user, Password: g.pass,
		TLSCAFile: g.tlsCA, TLSCertFile: g.tlsCert, TLSKeyFile: g.tlsKey,
	})
	if err != nil {
		return nil, nil, err
	}
	var kv jetstream.KeyValue
	if create {
		kv, err = events.OpenBucket(ctx, conn.JetStream(), events.BucketConfig{Name: g.bucket})
	} else if kv, err = conn.JetStream().KeyValue(ctx, g.bucket); err != nil {
		err = fmt.Errorf("open bucket %s: %w", g.bucket, err)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, kv, nil
}
