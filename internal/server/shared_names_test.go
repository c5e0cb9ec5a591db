package server

import (
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// The names below are kept for expiry_test.go and usage*_test.go, which
// call them; each is one call into testkit, and can go once those files
// call testkit themselves.

// waitFor is testkit.Eventually with its arguments in the old order.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	testkit.Eventually(tb, timeout, what, cond)
}

// checkRequest is testkit.CheckRequest with the surface as an argument.
func checkRequest(path, surface string, headers map[string]string) *authv3.CheckRequest {
	return testkit.CheckRequest(path, headers, testkit.Surface(surface))
}

// mustBalance is testkit.Balance.
func mustBalance(tb testing.TB, s string) authz.Balance {
	tb.Helper()
	return testkit.Balance(tb, s)
}

// testNATS is a testkit.NATS with the url method those files call.
type testNATS struct{ *testkit.NATS }

func (n testNATS) url() string { return n.URL() }

// startNATS is testkit.StartNATS.
func startNATS(tb testing.TB) testNATS {
	tb.Helper()
	return testNATS{testkit.StartNATS(tb)}
}
