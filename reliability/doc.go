// Package reliability holds the fault, scale-out, soak and hostile-event tests
// of footstep-authz: they build instances from the real parts (events.Conn,
// cache.Store, events.Watcher, envoy.Engine behind a real gRPC server) against
// embedded nats-server processes, single or clustered, and break things.
//
// The package has no production code; everything is in its tests. The long
// variants run behind flags: go test ./reliability -run Soak -soak=10m.
package reliability
