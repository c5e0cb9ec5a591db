package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// keyChange maps a key's current record to the next one; noop true leaves
// the record as it is.
type keyChange func(cur authz.KeyRecord) (next authz.KeyRecord, noop bool)

// errAttemptTimedOut marks an attempt that ran out of its own time while the
// caller's had some left: it is retried from a fresh read.
var errAttemptTimedOut = errors.New("write attempt timed out")

// errTombstoneOnly refuses to put a key whose record is gone but whose
// tombstone remains (a delete and a put made around every replica).
var errTombstoneOnly = fmt.Errorf("%w (its tombstone remains: key delete clears it)", authz.ErrRevokedTerminal)

// changeKey applies change to a key's record, retrying from a fresh read
// while other writers come first. op "put" creates a missing record; every
// other op needs one.
func (p *Publisher) changeKey(ctx context.Context, op string, h authz.KeyHash, change keyChange) (uint64, error) {
	return p.retry(ctx, op+" key "+h.String(), func(ctx context.Context) (uint64, error) {
		return p.tryChangeKey(ctx, op, h, change)
	})
}

// writeAttempt bounds one read-check-write attempt. A write sent while the
// stream elects a leader may never be acknowledged; the next attempt reads
// again, so a write that did land is seen and not repeated wrongly.
const writeAttempt = 2 * time.Second

// retry runs try until it succeeds, fails for another reason than a lost
// revision race or an attempt that timed out, or the attempts run out.
func (p *Publisher) retry(ctx context.Context, what string, try func(context.Context) (uint64, error)) (uint64, error) {
	for attempt := range maxAttempts {
		actx, cancel := context.WithTimeout(ctx, writeAttempt)
		rev, err := try(actx)
		cancel()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = errAttemptTimedOut
		}
		if !conflict(err) && !errors.Is(err, errAttemptTimedOut) {
			if err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
			return rev, nil
		}
		if err := retryWait(ctx, attempt); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
	}
	return 0, fmt.Errorf("%s: %w", what, ErrConflict)
}

// tryChangeKey checks the change against the key's effective record: one
// with a tombstone is revoked, whatever its record says.
func (p *Publisher) tryChangeKey(ctx context.Context, op string, h authz.KeyHash, change keyChange) (uint64, error) {
	v, err := p.store().InspectKey(ctx, h)
	if err != nil {
		return 0, err // unreadable records are changed only by deletion
	}
	subject := KeyKVKey(h)
	if v.Stored.Presence == authz.Absent {
		switch {
		case op != "put":
			return 0, ErrNotFound
		case v.Tombstone != nil:
			return 0, errTombstoneOnly
		}
		next, _ := change(authz.KeyRecord{})
		val, err := EncodeKey(next)
		if err != nil {
			return 0, err
		}
		return p.kv.Create(ctx, subject, val)
	}
	cur := v.Entry
	next, noop := change(cur.Record)
	if err := authz.CheckTransitionAt(&cur.Record, &next, p.now()); err != nil {
		return 0, err // before the no-op: reactivating an expired active key is refused
	}
	if noop {
		return cur.Revision, nil
	}
	val, err := EncodeKey(next)
	if err != nil {
		return 0, err
	}
	return p.kv.Update(ctx, subject, val, v.Stored.Revision)
}

// Revoke revokes an existing key for good and returns the revision of its
// revoked record. It writes the key's tombstone first, then the record, so
// that the revocation holds from the first write even if the second never
// happens; revoking a revoked key writes a missing tombstone and is
// otherwise a no-op. When the key is deleted meanwhile, it removes the
// tombstone it wrote and returns ErrNotFound.
func (p *Publisher) Revoke(ctx context.Context, h authz.KeyHash) (uint64, error) {
	var created uint64
	rev, err := p.retry(ctx, "revoke key "+h.String(), func(ctx context.Context) (uint64, error) {
		return p.tryRevoke(ctx, h, &created)
	})
	if errors.Is(err, ErrNotFound) && created != 0 {
		_ = p.kv.Delete(ctx, TombstoneKVKey(h), jetstream.LastRevision(created))
	}
	return rev, err
}

func (p *Publisher) tryRevoke(ctx context.Context, h authz.KeyHash, created *uint64) (uint64, error) {
	v, err := p.store().InspectKey(ctx, h)
	switch {
	case err != nil:
		return 0, err
	case v.Stored.Presence == authz.Absent:
		return 0, ErrNotFound
	}
	rec := v.Stored.Record
	if v.Tombstone == nil {
		val, err := EncodeTombstone(NewTombstone(rec, v.Stored.Revision, time.Now()))
		if err != nil {
			return 0, err
		}
		if *created, err = p.kv.Create(ctx, TombstoneKVKey(h), val); err != nil {
			return 0, err
		}
	}
	if rec.State == authz.StateRevoked {
		return v.Stored.Revision, nil
	}
	rec.State = authz.StateRevoked
	val, err := EncodeKey(rec)
	if err != nil {
		return 0, err
	}
	return p.kv.Update(ctx, KeyKVKey(h), val, v.Stored.Revision)
}

// DeleteKey deletes a key, revoked or not (an unreadable record too), then
// its tombstone, each only if unchanged since read, or where no tombstone
// stood, leaves a removal marker in its place; it returns the revision of
// the key's delete marker, 0 when there was no record. A tombstone left
// without its key (by a delete and a put made while no replica ran) is
// removed too, so that the key can be put again.
func (p *Publisher) DeleteKey(ctx context.Context, h authz.KeyHash) (uint64, error) {
	var marker uint64
	_, err := p.retry(ctx, "delete key "+h.String(), func(ctx context.Context) (uint64, error) {
		return 0, p.tryDeleteKey(ctx, h, &marker)
	})
	if err != nil {
		return 0, err
	}
	return marker, nil
}

func (p *Publisher) tryDeleteKey(ctx context.Context, h authz.KeyHash, marker *uint64) error {
	v, err := p.store().InspectKey(ctx, h)
	if err != nil && !errors.Is(err, ErrBadRecord) {
		return err
	}
	if *marker == 0 && v.Stored.Presence != authz.Absent { // once deleted, a new record is not ours to delete
		if *marker, err = p.publishDelete(ctx, KeyKVKey(h), v.Stored.Revision); err != nil {
			return err
		}
	}
	switch {
	case v.Tombstone != nil:
		return p.kv.Delete(ctx, TombstoneKVKey(h), jetstream.LastRevision(v.TombstoneRevision))
	case *marker != 0:
		// No tombstone stands, but a replica may hold the key as revoked by
		// its record alone, its own tombstone write not made: a removal
		// marker tells it the revocation ended, where a put of the key
		// right after this delete would supersede the record's own marker
		// before a lagging watch read it. It also fails such a replica's
		// tombstone write still under way (terminal_writes.go).
		return p.kv.Delete(ctx, TombstoneKVKey(h))
	}
	return nil
}

// publishDelete writes a KV delete marker, as KeyValue.Delete with
// LastRevision does, but returns the marker's revision, which Delete does
// not. It assumes a bucket without a JetStream domain or API prefix.
func (p *Publisher) publishDelete(ctx context.Context, kvKey string, rev uint64) (uint64, error) {
	m := nats.NewMsg("$KV." + p.kv.Bucket() + "." + kvKey)
	m.Header.Set("KV-Operation", "DEL")
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
