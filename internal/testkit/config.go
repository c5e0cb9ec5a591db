package testkit

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// ReplaceOnce returns text with the first old replaced by new, and fails the
// test when text (the content of file) no longer contains old: a check of a
// shipped configuration must not pass because its mutation missed.
func ReplaceOnce(tb testing.TB, file, text, old, new string) string {
	tb.Helper()
	if !strings.Contains(text, old) {
		tb.Fatalf("%s no longer contains %q: update this test", file, old)
	}
	return strings.Replace(text, old, new, 1)
}

// WantError fails the test unless err is an error whose message contains
// want; what says what returned err, for the failure message.
func WantError(tb testing.TB, what string, err error, want string) {
	tb.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		tb.Errorf("%s = %v; want an error containing %q", what, err, want)
	}
}

// EnvCount returns the positive whole number in the environment variable
// name, or def when it is unset; any other value fails the test.
func EnvCount(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
