package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/server"
)

// validate checks the configuration as a whole; each error is one line that
// names the flag.
func (c *config) validate() error {
	for _, check := range []func() error{c.validateAddrs, c.validateLimits, c.validateChoices, c.validateFiles} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *config) validateAddrs() error {
	for _, a := range []struct{ name, addr string }{
		{"grpc-addr", c.GRPCAddr}, {"http-addr", c.HTTPAddr}, {"admin-addr", c.AdminAddr},
		{"embedded-nats-addr", c.EmbeddedNATSAddr},
	} {
		if a.addr == "" && a.name == "http-addr" {
			continue
		}
		if err := checkAddr(a.addr); err != nil {
			return fmt.Errorf("--%s %q: %w", a.name, authz.Clip(a.addr), err)
		}
	}
	return nil
}

func (c *config) validateLimits() error {
	switch {
	case !events.ValidBucketName(authz.Clip(c.KVBucket)):
		return fmt.Errorf("--kv-bucket %q: want 1 to 64 of [A-Za-z0-9_-], not holding an API key", authz.Clip(c.KVBucket))
	case c.KVReplicas < 1 || c.KVReplicas > 5:
		return fmt.Errorf("--kv-replicas %d: want 1 to 5", c.KVReplicas)
	case c.LookupBudget < 0:
		return fmt.Errorf("--max-kv-lookups-per-second %v: want 0 (no bound) or more", c.LookupBudget)
	case c.NegativeTTL <= 0 || c.LookupTimeout <= 0 || c.ShutdownTimeout <= 0:
		return errors.New("--negative-ttl, --lookup-timeout and --shutdown-timeout must be positive")
	case envoy.CheckPathPrefix(c.HTTPPathPrefix) != nil:
		return fmt.Errorf("--http-path-prefix %q: %w", authz.Clip(c.HTTPPathPrefix), envoy.CheckPathPrefix(c.HTTPPathPrefix))
	case c.MaxStaleness < server.MinMaxStaleness:
		return fmt.Errorf("--max-staleness %s: want at least %s", c.MaxStaleness, server.MinMaxStaleness)
	case c.UsageInterval < server.MinUsageInterval || c.UsageInterval > server.MaxUsageInterval:
		return fmt.Errorf("--usage-interval %s: want %s to %s", c.UsageInterval, server.MinUsageInterval, server.MaxUsageInterval)
	}
	return nil
}

func (c *config) validateChoices() error {
	switch {
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("--log-format %q: want json or text", authz.Clip(c.LogFormat))
	case c.Mode != server.ModeEnforce && c.Mode != server.ModeShadow:
		return fmt.Errorf("--mode %q: want enforce or shadow", authz.Clip(c.Mode))
	case c.StalePolicy != server.StaleDeny && c.StalePolicy != server.StaleServe:
		return fmt.Errorf("--stale-policy %q: want deny or serve", authz.Clip(c.StalePolicy))
	case c.Demo && c.NATSURL != "":
		return errors.New("--demo seeds keys into the embedded NATS server only; drop --nats-url")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS")
	case (c.NATS.TLSCertFile == "") != (c.NATS.TLSKeyFile == ""):
		return errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	return nil
}

// validateFiles checks that every file named exists and is readable, so that
// a typo stops the start instead of the first TLS handshake.
func (c *config) validateFiles() error {
	for _, f := range []struct{ name, path string }{
		{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"tls-client-ca", c.TLSClientCA},
		{"nats-creds", c.NATS.CredsFile}, {"nats-nkey", c.NATS.NKeySeedFile}, {"nats-tls-ca", c.NATS.TLSCAFile},
		{"nats-tls-cert", c.NATS.TLSCertFile}, {"nats-tls-key", c.NATS.TLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("--%s: %w", f.name, err)
		}
		fh.Close()
	}
	if c.TLSCert != "" {
		if err := server.CheckTLS(c.TLSCert, c.TLSKey, c.TLSClientCA); err != nil {
			return err
		}
	}
	return nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as :9001 or 127.0.0.1:9001")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}
