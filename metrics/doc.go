// Package metrics exports what footstep-authz decides and how fresh its
// state is, as Prometheus metrics.
//
// A Metrics owns its own registry (no global state): decisions by code and
// surface and their latency (it is an envoy.Observer), key-value lookups on
// cache misses (Loader wraps a cache.Loader), what the bucket's watch applies
// and how late (WatchObserver), exposure events, key expiries and usage
// summaries (UsageObserver), and, read at every scrape,
// the cache's counters, the NATS connection, the watch's sync and the age of
// the cached state (Observe).
//
// No label ever holds a key, a key hash or a key id: labels are codes,
// surfaces, record kinds and results, each from a fixed set.
//
// A Metrics is safe for concurrent use. It starts no goroutines; Handler
// serves the registry.
package metrics
