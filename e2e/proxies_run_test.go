//go:build e2e

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/footstep/authz/internal/testkit"
)

// addrs are where a proxy listens and what it talks to.
type addrs struct {
	proxy, authz, upstream string
}

// rewrite returns a shipped example configuration with its loopback addresses
// replaced by the test's.
func (a addrs) rewrite(tb testing.TB, file string) string {
	tb.Helper()
	return exampleConfig(tb, file, map[string]string{
		exampleProxyAddr:    a.proxy,
		exampleAuthzAddr:    a.authz,
		exampleUpstreamAddr: a.upstream,
	})
}

// findProxy returns the path of a proxy binary, or skips (fails on CI) when it
// is not installed.
func findProxy(tb testing.TB, name string, more ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range more {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := name + " is not installed (.ci/install-proxies.sh installs it): skipping its end-to-end tests"
	if os.Getenv("FOOTSTEP_E2E_REQUIRE_PROXIES") == "1" {
		tb.Fatal(msg + "; FOOTSTEP_E2E_REQUIRE_PROXIES=1 forbids the skip")
	}
	tb.Skip(msg)
	return ""
}

// startProcess runs a proxy in the foreground until the test ends, with its
// output in the test log.
func startProcess(tb testing.TB, env []string, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	w := &testWriter{tb: tb, prefix: filepath.Base(name) + ": "}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

type testWriter struct {
	tb     testing.TB
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	logf(w.tb, "%s%s", w.prefix, p)
	return len(p), nil
}

// startNginx runs the shipped nginx.conf against a.
func startNginx(tb testing.TB, a addrs) {
	tb.Helper()
	bin := findProxy(tb, "nginx", "/usr/sbin/nginx")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(a.rewrite(tb, "nginx.conf")), 0o644); err != nil {
		tb.Fatal(err)
	}
	global := "daemon off; pid " + filepath.Join(dir, "nginx.pid") + "; error_log stderr warn;"
	if os.Geteuid() == 0 {
		global += " user root;" // workers as nobody could not enter the private temp dir
	}
	startProcess(tb, nil, bin, "-e", "stderr", "-p", dir, "-c", conf, "-g", global)
	waitListening(tb, a.proxy)
}

// startCaddy runs the shipped Caddyfile against a.
func startCaddy(tb testing.TB, a addrs) {
	tb.Helper()
	home, _ := os.UserHomeDir()
	bin := findProxy(tb, "caddy", filepath.Join(os.Getenv("FOOTSTEP_TOOLS_BIN"), "caddy"),
		filepath.Join(home, ".cache", "footstep-tools", "bin", "caddy"))
	dir := tb.TempDir()
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(a.rewrite(tb, "Caddyfile")), 0o644); err != nil {
		tb.Fatal(err)
	}
	env := []string{"XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir}
	startProcess(tb, env, bin, "run", "--config", conf, "--adapter", "caddyfile")
	waitListening(tb, a.proxy)
}

// waitListening waits until something accepts connections on addr.
func waitListening(tb testing.TB, addr string) {
	tb.Helper()
	var err error
	listening := testkit.Poll(20*time.Second, func() bool {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err != nil {
			return false
		}
		c.Close()
		return true
	})
	if !listening {
		tb.Fatalf("nothing listens on %s after 20s: %v", addr, err)
	}
}
