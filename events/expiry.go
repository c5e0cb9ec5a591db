package events

import (
	"time"

	"github.com/footstep/authz/authz"
)

// An expired key is terminal like a revoked one. Checks decide expiry from
// the record they hold (authz.DecideAt), with no event and no timer; what
// needs the bucket is the rule that nothing but a revocation or a deletion
// may follow the expiry instant. The Publisher refuses such changes
// (authz.CheckTransitionAt). For raw writes, each watcher remembers the
// expires_at of every key whose last put carries one, and a later put that
// is not a revocation, made (by the entry's KV timestamp) at or after that
// instant, is refused as a revival: applied as revoked, written back as
// revoked, and given a tombstone, so that replicas started afterwards hold
// it revoked too.

// putAfterExpiry records the expiry of a key's new record and reports
// whether the key had already expired, by its previous record, when the put
// was made at created. It runs under the watcher's mu.
func (r *rules) putAfterExpiry(h authz.KeyHash, rec authz.KeyRecord, created time.Time) bool {
	prev, had := r.t.expiring[h]
	if rec.ExpiresAt.IsZero() {
		delete(r.t.expiring, h)
	} else {
		r.t.expiring[h] = rec.ExpiresAt
	}
	return had && !created.Before(prev) && rec.State != authz.StateRevoked
}
