// Package e2e proves footstep-authz's HTTP service end to end, through the real
// proxies whose configurations ship in examples/proxies: it builds and starts
// footstep-authz on its embedded NATS server, an echo upstream and each proxy on
// loopback ports, and sends real requests through them.
//
// The suite is behind the e2e build tag: go test -tags e2e ./e2e. A proxy whose
// binary is missing is skipped, unless FOOTSTEP_E2E_REQUIRE_PROXIES=1 (as on CI,
// after .ci/install-proxies.sh), which turns the skip into a failure. Without the
// tag, only the static checks of the example configurations run.
package e2e
