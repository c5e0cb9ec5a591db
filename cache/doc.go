// Package cache keeps the states of API keys and accounts in memory, so that
// an authorization is answered without I/O.
//
// A Store holds entries in two ristretto caches, bounded by a memory budget,
// and fills a miss from a Loader (the NATS key-value bucket), with one load
// in flight per key and negative entries for unknown keys. Changes from the
// bucket's watch are applied with ApplyKey and ApplyAccount.
//
// Revisions never go backwards, and a change costs a miss of its own entry
// at most. ristretto applies Sets asynchronously, may drop or reject them,
// and may let a queued Set land after a later Del, so it is never trusted
// to remember a revision; what must not be forgotten is kept beside it, per
// shard, and only for as long as it matters:
//
//   - A pin is a change from the watch: its Del and Set are issued and the
//     pin answers reads until a drain (ristretto's Wait) shows ristretto has
//     processed both, a millisecond or two. Reads lock a shard only while it
//     has pins.
//   - The watch applies revisions in increasing order, so the highest one
//     applied, its position, tells which revisions it has not yet delivered.
//     A load that read revision r beyond it leaves a floor for the key until
//     the position reaches r; a change older than the key's floor, pin or
//     cached entry is ignored. Floors are consulted by changes, not by reads.
//   - A load that lost to a change applied while it ran is not cached.
//
// Pins and floors are bounded per shard. A shard out of room for floors
// keeps only the highest revision read ahead of the watch, and until the
// watch passes it withholds changes it cannot prove newer than every read:
// the entry is removed and the next read loads it. The same holds for a
// change delivered out of order. Reset starts revisions over.
//
// A watch that starts from the bucket's current position instead of
// replaying it empties the store and tells it where with StartAt (what
// misses loaded before the start goes: no change up to it will come to
// correct it), and removes with ForgetKeys the keys whose change it cannot
// state yet (forget.go): their next read loads them, and a load of them in
// flight is read again.
//
// A Store is safe for concurrent use. New starts a janitor goroutine that
// Close stops.
package cache
