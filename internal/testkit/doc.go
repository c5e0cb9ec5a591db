// Package testkit holds what the tests of footstep-authz share: polling with
// a deadline, a log sink that tests read while servers write, embedded NATS
// servers (one, or a cluster of three whose routes can be cut), a cuttable
// TCP proxy, ext_authz CheckRequest builders, in-memory key and account
// states, a hand-moved clock, a once-per-process build of a command, an HTTP
// request read to its end, and the "change a good configuration, expect this
// error" shape.
//
// Only tests import it. Every helper that starts something takes a
// testing.TB, calls tb.Helper, and stops what it started with tb.Cleanup, so
// a test needs no teardown of its own. A value is for its test's goroutine
// unless its documentation says it is safe for concurrent use (LogBuffer,
// Proxy, States, Clock).
//
// testkit imports authz for the domain's types and nothing else of this
// module, so that the tests of every package, events and cache included,
// can use it without an import cycle.
package testkit
