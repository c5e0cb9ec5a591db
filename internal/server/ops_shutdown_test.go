package server

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

// blockingStates holds every key lookup until released (or its call ends),
// to keep a Check in flight.
type blockingStates struct {
	envoy.States
	entered chan struct{}
	release chan struct{}
}

func newBlockingStates() *blockingStates {
	return &blockingStates{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blockingStates) wrap(s envoy.States) envoy.States {
	b.States = s
	return b
}

func (b *blockingStates) Key(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return b.States.Key(ctx, h)
}

// checkResult is the outcome of a Check made in the background.
type checkResult struct {
	code int
	err  error
}

// checkBlocked starts a Check of key on s in the background and returns once
// the lookup is held by blocker; the Check's outcome comes on the channel.
func checkBlocked(t *testing.T, s *testServer, blocker *blockingStates, key string) <-chan checkResult {
	t.Helper()
	conn := dialGRPC(t, s.addr("grpc"), nil)
	result := make(chan checkResult, 1)
	go func() {
		code, _, err := checkCode(t, conn, key, "")
		result <- checkResult{code, err}
	}()
	<-blocker.entered
	return result
}

// TestShutdownDrainsInFlight: when the context ends (SIGTERM), health turns
// NOT_SERVING at once, a Check in flight is still answered, and only then
// does the server stop.
func TestShutdownDrainsInFlight(t *testing.T) {
	blocker := newBlockingStates()
	s := startServer(t, withStates(blocker.wrap), func(c *Config) { c.ShutdownTimeout = 10 * time.Second })
	s.put(t, "sk_live_drain_1", "key_d1", "acct_d", "5.00", authz.StateActive)
	result := checkBlocked(t, s, blocker, "sk_live_drain_1")

	s.cancel() // what SIGTERM does to run's context
	testkit.Eventually(t, 15*time.Second, "NOT_SERVING", func() bool {
		resp, err := s.app.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	select {
	case err := <-s.done:
		t.Fatalf("stopped (%v) with a Check in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(blocker.release)
	if r := <-result; r.err != nil || r.code != 200 {
		t.Errorf("Check in flight at shutdown = %d, %v; want answered 200", r.code, r.err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("wait = %v; want nil", err)
		}
		s.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("not stopped 10s after the last Check was answered")
	}
}

// TestShutdownTimeoutBoundsDrain: a Check that never finishes is cut at
// --shutdown-timeout and the server stops anyway.
func TestShutdownTimeoutBoundsDrain(t *testing.T) {
	blocker := newBlockingStates()
	s := startServer(t, withStates(blocker.wrap), func(c *Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	result := checkBlocked(t, s, blocker, "sk_live_stuck_1")
	start := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("not stopped 10s after cancel with --shutdown-timeout 300ms")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stopped after %v; want the Check waited for up to --shutdown-timeout", d)
	}
	if r := <-result; r.err == nil {
		t.Errorf("stuck Check = %d; want cut with an error", r.code)
	}
	close(blocker.release)
}
