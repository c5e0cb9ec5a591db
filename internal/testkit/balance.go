package testkit

import (
	"testing"

	"github.com/footstep/authz/authz"
)

// Balance parses s as an account balance ("12.50", "-3"), failing the test
// when it does not parse.
func Balance(tb testing.TB, s string) authz.Balance {
	tb.Helper()
	b, err := authz.ParseBalance(s)
	if err != nil {
		tb.Fatalf("balance %q: %v", s, err)
	}
	return b
}
