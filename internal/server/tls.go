package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ALPN protocols offered on each TLS port.
var (
	grpcProtos = []string{"h2"}
	httpProtos = []string{"h2", "http/1.1"}
)

// certFiles serves a certificate, and optionally a client CA bundle, read
// from files, and reads them again at the next handshake after one of them
// changes (modification time or size), so that a renewed certificate is used
// without a restart. A change that does not load (a key not yet matching its
// new certificate, a half-written file) keeps the previous one in use and
// is retried at the next handshake. Safe for concurrent use.
type certFiles struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger

	mu     sync.Mutex
	stamps [3]fileStamp // of certFile, keyFile, caFile
	cert   *tls.Certificate
	pool   *x509.CertPool // nil without a client CA
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

// newCertFiles loads the files once; any failure is an error.
func newCertFiles(certFile, keyFile, caFile string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log}
	stamps, err := c.stat()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamps); err != nil {
		return nil, err
	}
	return c, nil
}

// serverConfig returns a server TLS configuration offering protos; each
// handshake gets the current certificate and client CAs.
func (c *certFiles) serverConfig(protos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return c.handshakeConfig(protos), nil
		},
	}
}

func (c *certFiles) handshakeConfig(protos []string) *tls.Config {
	cert, pool := c.current()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: protos, Certificates: []tls.Certificate{*cert}}
	if pool != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
	}
	return cfg
}

// current reloads the files if they changed and returns what is in use.
func (c *certFiles) current() (*tls.Certificate, *x509.CertPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps, err := c.stat()
	if err == nil && stamps != c.stamps {
		err = c.load(stamps)
		if err == nil {
			c.log.Info("tls certificate reloaded", "cert", c.certFile, "client_ca", c.caFile, "not_after", c.cert.Leaf.NotAfter)
		}
	}
	if err != nil {
		c.log.Warn("tls files changed but do not load; keeping the previous certificate", "error", err)
	}
	return c.cert, c.pool
}

func (c *certFiles) stat() ([3]fileStamp, error) {
	var stamps [3]fileStamp
	for i, name := range []string{c.certFile, c.keyFile, c.caFile} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return stamps, err
		}
		stamps[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return stamps, nil
}

// load reads the files; on success it records stamps so that the same
// version is not read again. c.mu must be held, or c not yet shared.
func (c *certFiles) load(stamps [3]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert and --tls-key: %w", err)
	}
	var pool *x509.CertPool
	if c.caFile != "" {
		if pool, err = loadCAs(c.caFile); err != nil {
			return err
		}
	}
	c.cert, c.pool, c.stamps = &cert, pool, stamps
	return nil
}

func loadCAs(name string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("--tls-client-ca: no PEM certificate in the file")
	}
	return pool, nil
}

// CheckTLS loads a server certificate, its key and, when caFile is not
// empty, a client CA bundle once, so that a bad file stops the start.
func CheckTLS(certFile, keyFile, caFile string) error {
	_, err := newCertFiles(certFile, keyFile, caFile, slog.New(slog.DiscardHandler))
	return err
}
