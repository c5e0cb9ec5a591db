// Package events connects footstep-authz to NATS: it runs an embedded
// nats-server with JetStream (StartEmbedded), connects to NATS with reconnect
// notifications (Connect), opens the key-value bucket that holds key and
// account state and refuses one whose settings could lose records silently
// (OpenBucket), encodes and strictly decodes its records (schema.go,
// tombstone.go), loads single records on a cache miss through the stream
// leader (Loader), applies every change of the bucket to a consumer's Sink in
// revision order (Watcher; with a LazySink, from the bucket's current
// revision while it indexes the history in the background), and writes
// changes with optimistic concurrency (Publisher) and key exposure events
// (ExposurePublisher).
//
// # Revoked is terminal, durably
//
// The bucket keeps one value per KV key, so a revoked record overwritten by
// an active one leaves no trace of the revocation. A tombstone does: the
// record revoked.<sha256 hex> with {"key_id","account_id","revision","at"}.
// While it exists, a present key.<hash> record is revoked whatever state it
// holds, for every replica and for footstepctl alike:
//
//   - Publisher.Revoke writes the tombstone, then the revoked record; every
//     watcher that sees a revoked record without a tombstone writes one, so
//     raw writes are covered too: for the record the stream leader holds,
//     if it is still that record (or revoked), and only over the
//     tombstone's KV key as it read it before the record, so that one
//     replica wins and a removal marker written meanwhile fails the write.
//   - A watcher applies the revoked state in either arrival order (a
//     tombstone before or after the put that revives the key), at the later
//     revision of the two, and writes a revived record back as revoked
//     (Update at the revival's revision; a lost race is fine). Each refusal
//     is counted (WatchObserver.Refused) and logged with the hash and key_id.
//   - Loader.LoadKey reads the tombstone of a present record that is not
//     revoked, unless the watcher's index (Store.UseIndex) has applied the
//     record's revision and can answer without a read; while the watcher
//     builds its index after a lazy start, it reads both together and the
//     watcher judges them (below).
//   - A delete or purge of key.<hash> ends the key: watchers forget its
//     guard at once and remove the tombstone they know (Delete with that
//     tombstone's revision, never a newer one); Publisher.DeleteKey deletes
//     the record, then the tombstone, or where none stands leaves a removal
//     marker in its place: a watcher that knew the revocation by the
//     record alone sees it end there, even when a put of the key right after
//     the delete superseded the record's own marker before the watch read
//     it. A tombstone written after its key's
//     deletion (a revocation racing a delete) is removed by the watchers; a
//     tombstone removed while the key still holds the revoked record a
//     watcher saw is written again. A put after the removal is a new key:
//     a put right after Publisher.DeleteKey supersedes the record's delete
//     marker, which a watch that had not read it never sees. A watcher that
//     knew the key's revocation only by its tombstone repairs the record to
//     revoked only while the tombstone still stands: one gone means a
//     deletion, and the record it reads may be the new key.
//   - A full resync forgets everything and relearns it from the replay: a
//     recreated bucket is a new history.
//
// One window stays open: a raw delete and a new put of the same key made
// while no replica runs leave the tombstone in place, so the new key answers
// revoked (and footstepctl key put refuses it) until footstepctl key delete
// is run, which always clears both.
//
// # Starting without a replay
//
// A Watcher whose sink is a LazySink (the cache) does not replay the bucket
// before it is ready (build.go). It watches from the bucket's current
// revision at once and is ready once the probe proves that watch current;
// the sink starts empty and loads keys on demand; a background pass reads
// the history up to the start into the key index and the terminal state,
// which vouch for nothing until it is done (IndexedKeys reports it). Until
// then a miss is read with a snapshot read (snapshot_read.go) that proves
// the server answering had applied the start, and the key's verdict runs
// the rules, without writing, over the history read so far, the key's live
// changes and the snapshot (build_verdict.go). A key whose first change
// after the start is a put that may have replaced a record the pass had not
// read (the bucket keeps one value per key) fails closed until the build is
// done: its revocation or expiry could be in the record it replaced.
//
// Every exported type is safe for concurrent use unless its documentation
// says otherwise. An Embedded server runs until Shutdown, a Conn until Close,
// and a Watcher from Run until the context passed to Run ends; the few
// bucket writes a Watcher starts end within a couple of seconds of it.
// Nothing starts at import time and there is no package-level mutable state.
//
// A plaintext API key never appears in what this package writes to NATS, to
// logs or to errors: keys are referred to by their SHA-256 hash and key_id.
package events
