package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestMutualTLS: with --tls-client-ca, only a client holding a certificate
// from that CA gets an answer, on the gRPC and on the HTTP port.
func TestMutualTLS(t *testing.T) {
	ca, other := newPKI(t, "envoy-ca"), newPKI(t, "other-ca")
	_, certFile, keyFile := ca.issue("server", 10, true)
	envoyCert, _, _ := ca.issue("envoy", 11, false)
	strangerCert, _, _ := other.issue("stranger", 12, false)
	s := startServer(t, func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = certFile, keyFile, ca.caFile("envoy-ca") })

	clients := []struct {
		name  string
		tls   *tls.Config // nil: plaintext
		works bool
	}{
		{"client certificate from the CA", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{envoyCert}}, true},
		{"no client certificate", &tls.Config{RootCAs: ca.pool}, false},
		{"client certificate from another CA", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{strangerCert}}, false},
		{"plaintext", nil, false},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			code, _, err := checkCode(t, dialGRPC(t, s.addr("grpc"), c.tls), "sk_live_tls_unknown", "")
			if works := err == nil; works != c.works || (works && code != 403) {
				t.Errorf("gRPC Check = %d, %v; want answered %v", code, err, c.works)
			}
			if c.tls == nil {
				return
			}
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tls}}
			resp, err := hc.Get("https://" + s.addr("http") + "/v1/things")
			if err == nil {
				resp.Body.Close()
			}
			if works := err == nil; works != c.works || (works && resp.StatusCode != 401) {
				t.Errorf("HTTPS GET = %v, %v; want answered %v", resp, err, c.works)
			}
		})
	}
}

// TestServerTLS: with --tls-cert alone, clients need no certificate but a
// plaintext client gets no answer.
func TestServerTLS(t *testing.T) {
	ca := newPKI(t, "ca")
	_, certFile, keyFile := ca.issue("server", 20, true)
	s := startServer(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if _, _, err := checkCode(t, dialGRPC(t, s.addr("grpc"), &tls.Config{RootCAs: ca.pool}), "sk_live_x", ""); err != nil {
		t.Errorf("TLS client: %v", err)
	}
	if _, _, err := checkCode(t, dialGRPC(t, s.addr("grpc"), nil), "sk_live_x", ""); err == nil {
		t.Error("plaintext client was answered by a TLS port")
	}
}

// TestCertificateReload: a certificate renewed on disk is served to the
// next connection, without a restart; files that do not load keep the
// previous certificate in use.
func TestCertificateReload(t *testing.T) {
	ca := newPKI(t, "ca")
	_, certFile, keyFile := ca.issue("server", 30, true)
	s := startServer(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if got := servedSerial(t, s.addr("grpc"), ca.pool); got != 30 {
		t.Fatalf("served serial = %d; want 30", got)
	}
	// Renew: issue writes the same file names; bump the times so that the
	// change shows even on a file system with coarse timestamps.
	ca.issue("server", 31, true)
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := servedSerial(t, s.addr("grpc"), ca.pool); got != 31 {
		t.Errorf("served serial after renewal = %d; want 31", got)
	}
	if got := servedSerial(t, s.addr("http"), ca.pool); got != 31 {
		t.Errorf("HTTP port serial after renewal = %d; want 31", got)
	}
	if err := os.WriteFile(keyFile, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, s.addr("grpc"), ca.pool); got != 31 {
		t.Errorf("served serial with a broken key file = %d; want 31 (the last good one)", got)
	}
}

// servedSerial returns the serial number of the certificate served on addr.
func servedSerial(tb testing.TB, addr string, roots *x509.CertPool) int64 {
	tb.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		tb.Fatalf("tls dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
