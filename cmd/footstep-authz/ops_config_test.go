package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/footstep/authz/internal/testkit"
)

// TestBadConfiguration: each bad setting stops run before anything starts,
// with one line that names the flag.
func TestBadConfiguration(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	exists := filepath.Join(t.TempDir(), "exists.pem")
	if err := os.WriteFile(exists, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad address", []string{"--grpc-addr", "9001"}, nil, `--grpc-addr "9001"`},
		{"bad port", []string{"--admin-addr", ":99999"}, nil, "port must be a number from 0 to 65535"},
		{"unknown flag", []string{"--grcp-addr", ":1"}, nil, "unknown flag --grcp-addr"},
		{"bad duration", []string{"--lookup-timeout", "5 s"}, nil, `--lookup-timeout "5 s": want a duration`},
		{"bad duration in env", nil, map[string]string{"FOOTSTEP_MAX_STALENESS": "soon"}, "FOOTSTEP_MAX_STALENESS: want a duration"},
		{"bad bucket name", []string{"--kv-bucket", "footstep.keys"}, nil, `--kv-bucket "footstep.keys"`},
		{"negative lookup budget", []string{"--max-kv-lookups-per-second", "-1"}, nil, "--max-kv-lookups-per-second -1"},
		{"missing TLS file", []string{"--tls-cert", missing, "--tls-key", exists}, nil, "--tls-cert: open " + missing},
		{"missing client CA", []string{"--tls-cert", exists, "--tls-key", exists, "--tls-client-ca", missing}, nil, "--tls-client-ca: open"},
		{"TLS key without cert", []string{"--tls-key", exists}, nil, "--tls-cert and --tls-key go together"},
		{"client CA without cert", []string{"--tls-client-ca", exists}, nil, "--tls-client-ca needs --tls-cert"},
		{"TLS file not a certificate", []string{"--tls-cert", exists, "--tls-key", exists}, nil, "--tls-cert and --tls-key: tls:"},
		{"bad mode", []string{"--mode", "audit"}, nil, `--mode "audit": want enforce or shadow`},
		{"bad stale policy", []string{"--stale-policy", "allow"}, nil, `--stale-policy "allow": want deny or serve`},
		{"max staleness too short", []string{"--max-staleness", "100ms"}, nil, "--max-staleness 100ms: want at least 1s"},
		{"bad size", []string{"--cache-size", "lots"}, nil, "want a positive size"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "-log-level"},
		{"key as a log level", []string{"--log-level", "sk_live_pasted_by_mistake"}, nil, `--log-level "sk_live_[REDACTED]"`},
		{"key as a bucket", []string{"--kv-bucket", "sk_live_pasted_by_mistake"}, nil, `--kv-bucket "sk_live_[REDACTED]"`},
		{"key as an address", []string{"--grpc-addr", "sk_live_pasted_by_mistake"}, nil, `--grpc-addr "sk_live_[REDACTED]": want host:port`},
		{"key as an argument", []string{"sk_live_pasted_by_mistake"}, nil, `unexpected argument "sk_live_[REDACTED]"`},
		{"bad path prefix", []string{"--http-path-prefix", "authz"}, nil, `--http-path-prefix "authz"`},
		{"stray argument", []string{"serve"}, nil, `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			args := append([]string{"--embedded-nats-dir", t.TempDir(), "--embedded-nats-addr", "127.0.0.1:0",
				"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tt.args...)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, getenv, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("run(%q) error spans lines: %q", tt.args, err)
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("run(%q) printed %q %q; want only the returned error", tt.args, stdout.String(), stderr.String())
			}
		})
	}
}

// TestHelpListsEveryFlag: --help prints every flag, its variable and its
// default, and is not an error for main.
func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(--help) = %v; want flag.ErrHelp", err)
	}
	defaultConfig().flagSet().VisitAll(func(f *flag.Flag) {
		want := "--" + f.Name + " (env " + envName(f.Name) + `, default "` + f.DefValue + `")`
		if f.Name == "version" {
			want = "--version\n"
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	})
	for _, want := range []string{`--log-level (env FOOTSTEP_LOG_LEVEL, default "info")`, `--cache-size (env FOOTSTEP_CACHE_SIZE, default "256MiB")`, `--max-staleness (env FOOTSTEP_MAX_STALENESS, default "5m0s")`, `--stale-policy (env FOOTSTEP_STALE_POLICY, default "deny")`, `--mode (env FOOTSTEP_MODE, default "enforce")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// TestBinary builds footstep-authz and runs it: a bad setting exits 1 with
// one line on stderr; a started server answers SIGTERM by stopping and
// exiting 0.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testkit.BuildBinary(t, "github.com/footstep/authz/cmd/footstep-authz")
	t.Run("bad configuration exits 1", func(t *testing.T) {
		cmd := exec.Command(bin, "--kv-bucket", "no.dots")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit = %v; want status 1", err)
		}
		if want := "footstep-authz: --kv-bucket \"no.dots\": want 1 to 64 of [A-Za-z0-9_-], not holding an API key\n"; stderr.String() != want {
			t.Errorf("stderr = %q; want %q", stderr.String(), want)
		}
	})
	t.Run("SIGTERM exits 0", func(t *testing.T) {
		cmd := exec.Command(bin, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
			"--embedded-nats-addr", "127.0.0.1:0", "--embedded-nats-dir", t.TempDir())
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitForLog(t, stderr, "readiness changed")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after SIGTERM: %v; want exit 0", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatal("still running 15s after SIGTERM")
		}
	})
}

// waitForLog reads JSON log lines until one has message msg, and keeps
// draining the pipe in the background so that the process never blocks.
func waitForLog(tb testing.TB, r io.Reader, msg string) {
	tb.Helper()
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		seen := false
		for sc.Scan() {
			var rec struct{ Msg string }
			if !seen && json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == msg {
				seen = true
				close(found)
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		tb.Fatalf("no %q log line within 30s", msg)
	}
}

// TestVersion: --version prints the version and exits 0, before anything
// else is checked or started.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version", "--grpc-addr", "nonsense"}, func(string) string { return "" }, &out, &out); err == nil || !strings.Contains(err.Error(), "--grpc-addr") {
		t.Fatalf("run(--version with a bad flag) = %v; want the flag's error", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"--version"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("run(--version) = %v", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "footstep-authz ") || strings.Count(got, "\n") != 1 {
		t.Errorf("--version printed %q; want one line naming the command and its version", got)
	}
}

// TestMemoryLimit: without GOMEMLIMIT the server derives the runtime's soft
// limit, and without GOGC it sets its collector target; with them, the
// runtime's own reading stands.
func TestMemoryLimit(t *testing.T) {
	for env, want := range map[string]bool{"": true, "1GiB": false} {
		cfg, err := parseConfig(nil, func(k string) string { return map[string]string{"GOMEMLIMIT": env}[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DeriveMemoryLimit != want {
			t.Errorf("GOMEMLIMIT=%q: DeriveMemoryLimit %v; want %v", env, cfg.DeriveMemoryLimit, want)
		}
	}
	for env, want := range map[string]bool{"": true, "100": false, "off": false} {
		cfg, err := parseConfig(nil, func(k string) string { return map[string]string{"GOGC": env}[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SetGCPercent != want {
			t.Errorf("GOGC=%q: SetGCPercent %v; want %v", env, cfg.SetGCPercent, want)
		}
	}
}
