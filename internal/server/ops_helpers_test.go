package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/footstep/authz/internal/testkit"
)

// dialGRPC returns a client of addr; tlsCfg nil means plaintext.
func dialGRPC(tb testing.TB, addr string, tlsCfg *tls.Config) *grpc.ClientConn {
	tb.Helper()
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// checkCode calls Check and returns the HTTP status it tells Envoy to
// answer (200 to allow) and the value of header (from the OK headers or the
// denial headers).
func checkCode(tb testing.TB, conn *grpc.ClientConn, key, header string) (int, string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, testkit.KeyCheck(key))
	if err != nil {
		return 0, "", err
	}
	if ok := resp.GetOkResponse(); ok != nil {
		for _, h := range ok.GetHeaders() {
			if h.GetHeader().GetKey() == header {
				return 200, h.GetHeader().GetValue(), nil
			}
		}
		return 200, "", nil
	}
	d := resp.GetDeniedResponse()
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == header {
			return int(d.GetStatus().GetCode()), h.GetHeader().GetValue(), nil
		}
	}
	return int(d.GetStatus().GetCode()), "", nil
}

// healthOf returns the grpc.health.v1 status of the ext_authz service.
func healthOf(conn *grpc.ClientConn) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

// scrapeMetrics returns /metrics from the admin port.
func scrapeMetrics(tb testing.TB, s *testServer) string {
	tb.Helper()
	resp, err := http.Get("http://" + s.addr("admin") + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics = %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// metricValue returns the value of series (name and labels as exposed) in a
// scrape, or "" when absent.
func metricValue(scrape, series string) string {
	for line := range strings.SplitSeq(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// getStatus returns the status of GET url, or 0 when the request fails.
func getStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// testPKI is a CA and certificates it signs, written as PEM files.
type testPKI struct {
	tb   testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(tb testing.TB, name string) *testPKI {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{tb: tb, dir: tb.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(cert)
	p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) caFile(name string) string { return filepath.Join(p.dir, name+"-ca.pem") }

// issue signs a certificate for 127.0.0.1 (server) or a client, with
// serial, and returns it as a tls.Certificate and as cert and key files.
func (p *testPKI) issue(name string, serial int64, server bool) (tls.Certificate, string, string) {
	p.tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.tb.Fatal(err)
	}
	certFile := p.write(name+".pem", "CERTIFICATE", der)
	keyFile := p.write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		p.tb.Fatal(err)
	}
	return pair, certFile, keyFile
}

func (p *testPKI) write(name, typ string, der []byte) string {
	p.tb.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.tb.Fatal(err)
	}
	return path
}
