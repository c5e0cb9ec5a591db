// Package events connects footstep-authz to NATS: it runs an embedded
// nats-server with JetStream (StartEmbedded), connects to NATS with reconnect
// notifications (Connect), opens the key-value bucket that holds key and
// account state (OpenBucket), encodes and strictly decodes its records
// (schema.go), loads single records on a cache miss (Store), applies every
// change of the bucket to a consumer's Sink in revision order (Watcher), and
// writes changes with optimistic concurrency (Publisher) and key exposure
// events (ExposurePublisher).
//
// Every exported type is safe for concurrent use unless its documentation
// says otherwise. An Embedded server runs until Shutdown, a Conn until Close,
// and a Watcher from Run until the context passed to Run ends; nothing starts
// at import time and there is no package-level mutable state.
//
// A plaintext API key never appears in what this package writes to NATS, to
// logs or to errors: keys are referred to by their SHA-256 hash and key_id.
package events
