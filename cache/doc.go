// Package cache keeps the states of API keys and accounts in memory, so that
// an authorization is answered without I/O.
//
// A Store holds entries in two ristretto caches, bounded by a memory budget,
// and fills a miss from a Loader (the NATS key-value bucket), with one load
// in flight per key and negative entries for unknown keys. Changes from the
// bucket's watch are applied with ApplyKey and ApplyAccount.
//
// Revisions never go backwards. ristretto applies Sets asynchronously and may
// drop them, so a change is never recorded as a Set: it removes the cached
// entry and is kept, for a window, in a small map outside ristretto that every
// read consults first and every fill is checked against. A fill that read an
// older revision than a change already applied is discarded, and a dropped
// Set only causes a later miss.
//
// A Store is safe for concurrent use. New starts a janitor goroutine that
// Close stops.
package cache
