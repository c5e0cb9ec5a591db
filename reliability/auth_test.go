package reliability

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

const (
	natsUser     = "authz"
	natsPassword = "s3cret-Pa55"
)

// TestNATSAuthentication runs NATS with a user and password: the parts of
// footstep-authz connect with them and serve; without them, or with a wrong
// password, the connection is refused with an error that says so and does
// not quote the password.
func TestNATSAuthentication(t *testing.T) {
	s := testkit.StartNATS(t, testkit.WithUser(natsUser, natsPassword))
	ctx := context.Background()
	for _, tt := range []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", natsUser, "guess"},
		{"wrong user", "root", natsPassword},
	} {
		_, err := events.Connect(ctx, events.ConnConfig{URLs: []string{s.URL()}, User: tt.user, Password: tt.password})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: Connect = %v; want an authorization error", tt.name, err)
		}
		if err != nil && strings.Contains(err.Error(), natsPassword) {
			t.Errorf("%s: error quotes the password: %v", tt.name, err)
		}
	}

	in := startInstance(t, instanceConfig{URLs: []string{s.URL()}, User: natsUser, Password: natsPassword})
	in.waitReady(5 * time.Second)
	conn, err := events.Connect(ctx, events.ConnConfig{URLs: []string{s.URL()}, User: natsUser, Password: natsPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kv := openBucket(t, conn, 1)
	tr := newTruth()
	keys := seed(t, newDriver(events.NewPublisher(conn.JetStream(), kv), tr, 21, "auth", 1), "auth", 2)
	waitConverged(t, in, tr, keys, 15*time.Second, "authenticated instance")
}

// TestCommandsWithNATSAuthentication runs the real footstepctl and
// footstep-authz binaries against NATS with a user and password.
func TestCommandsWithNATSAuthentication(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	ctl := testkit.BuildBinary(t, "github.com/footstep/authz/cmd/footstepctl")
	authzBin := testkit.BuildBinary(t, "github.com/footstep/authz/cmd/footstep-authz")
	s := testkit.StartNATS(t, testkit.WithUser(natsUser, natsPassword))
	const key = "sk_live_ctl_with_credentials"
	creds := []string{"--nats-url", s.URL(), "--user", natsUser, "--password", natsPassword}

	run := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.Command(ctl, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "NATS_URL=")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	_, stderr, err := run(key, "key", "put", "--key", "-", "--account", "acct_ctl", "--nats-url", s.URL())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(strings.ToLower(stderr), "authorization") ||
		strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("footstepctl without credentials: %v, stderr %q; want exit 1 and one line naming the authorization failure", err, stderr)
	}
	if _, stderr, err := run(key, append([]string{"key", "put", "--key", "-", "--account", "acct_ctl"}, creds...)...); err != nil {
		t.Fatalf("footstepctl key put with credentials: %v: %s", err, stderr)
	}
	out, stderr, err := run(key, append([]string{"key", "get", "--key", "-"}, creds...)...)
	if err != nil || !strings.Contains(out, `"active"`) || strings.Contains(out+stderr, key) {
		t.Errorf("footstepctl key get: %v, %q %q; want the active record without the plaintext key", err, out, stderr)
	}

	args := []string{"--nats-url", s.URL(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--admin-addr", "127.0.0.1:0"}
	cmd := exec.Command(authzBin, args...)
	combined, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(combined)), "authorization") {
		t.Errorf("footstep-authz without credentials: %v, output %q; want exit 1 naming the authorization failure", err, combined)
	}

	cmd = exec.Command(authzBin, append(args, "--nats-user", natsUser, "--nats-password", natsPassword)...)
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan bool, 1)
	var logged strings.Builder
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		found := false
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
			if !found && strings.Contains(sc.Text(), "footstep-authz started") {
				found = true
				started <- true
			}
		}
		if !found {
			started <- false
		}
	}()
	select {
	case ok := <-started:
		if !ok {
			t.Errorf("footstep-authz with credentials did not start")
		}
	case <-time.After(20 * time.Second):
		t.Errorf("footstep-authz with credentials: not started within 20s")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if strings.Contains(logged.String(), natsPassword) {
		t.Errorf("footstep-authz logged the NATS password")
	}
}
