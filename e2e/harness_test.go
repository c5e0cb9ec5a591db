//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// authzServer is a running footstep-authz with its embedded NATS server, and what
// the tests use to change key states behind its back.
type authzServer struct {
	httpAddr  string
	publisher *events.Publisher
	kv        jetstream.KeyValue
}

// startAuthz runs the built binary with the demo keys on free loopback ports and
// waits until it is ready.
func startAuthz(tb testing.TB) *authzServer {
	tb.Helper()
	binary := testkit.BuildBinary(tb, "github.com/footstep/authz/cmd/footstep-authz")
	dir := tb.TempDir()
	httpAddr, grpcAddr, adminAddr := testkit.FreeAddr(tb), testkit.FreeAddr(tb), testkit.FreeAddr(tb)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "--demo",
		"--embedded-nats-addr", "127.0.0.1:0", "--embedded-nats-dir", filepath.Join(dir, "nats"),
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--admin-addr", adminAddr, "--log-level", "info")
	cmd.Env = withoutFootstepEnv(os.Environ())
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	natsURL := make(chan string, 1)
	go scanLog(tb, stderr, natsURL)
	a := &authzServer{httpAddr: httpAddr}
	select {
	case u := <-natsURL:
		a.connect(tb, u)
	case <-time.After(20 * time.Second):
		tb.Fatal("footstep-authz did not start its embedded NATS server within 20s")
	}
	waitHTTP(tb, "http://"+adminAddr+"/readyz", func(status int) bool { return status == http.StatusOK })
	return a
}

// scanLog passes the embedded NATS server's URL on and copies the log to the
// test log.
func scanLog(tb testing.TB, r io.Reader, natsURL chan<- string) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			URL   string `json:"url"`
		}
		if json.Unmarshal(s.Bytes(), &line) == nil && line.Msg == "embedded NATS server started" {
			natsURL <- line.URL
			continue
		}
		if line.Level == "INFO" {
			continue
		}
		logf(tb, "footstep-authz: %s", s.Text())
	}
}

// logf logs unless the test is over (a late line must not panic).
func logf(tb testing.TB, format string, args ...any) {
	defer func() { _ = recover() }()
	tb.Logf(format, args...)
}

func (a *authzServer) connect(tb testing.TB, natsURL string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := events.Connect(ctx, events.ConnConfig{URLs: []string{natsURL}, Name: "footstep-e2e"})
	if err != nil {
		tb.Fatalf("connect to footstep-authz's NATS at %s: %v", natsURL, err)
	}
	tb.Cleanup(conn.Close)
	if a.kv, err = events.OpenBucket(ctx, conn.JetStream(), events.BucketConfig{}); err != nil {
		tb.Fatal(err)
	}
	a.publisher = events.NewPublisher(conn.JetStream(), a.kv)
}

func withoutFootstepEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "FOOTSTEP_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitHTTP polls url until ok accepts its status, for up to 20 s.
func waitHTTP(tb testing.TB, url string, ok func(status int) bool) {
	tb.Helper()
	client := &http.Client{Timeout: time.Second}
	var err error
	ready := testkit.Poll(20*time.Second, func() bool {
		var resp *http.Response
		if resp, err = client.Get(url); err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return ok(resp.StatusCode)
	})
	if !ready {
		tb.Fatalf("%s not ready within 20s (last error %v)", url, err)
	}
}

// echoed is what the upstream answers: the request it received.
type echoed struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Headers map[string][]string `json:"headers"`
}

// startUpstream serves an upstream that echoes each request's method, URI and
// headers as JSON, and counts the requests.
func startUpstream(tb testing.TB) (*httptest.Server, *upstreamCount) {
	tb.Helper()
	count := &upstreamCount{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.add()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "upstream")
		_ = json.NewEncoder(w).Encode(echoed{r.Method, r.RequestURI, r.Header})
	}))
	tb.Cleanup(srv.Close)
	return srv, count
}

type upstreamCount struct {
	mu sync.Mutex
	n  int
}

func (c *upstreamCount) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *upstreamCount) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
