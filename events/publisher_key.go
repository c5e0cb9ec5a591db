package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// keyChange maps a key's current record to the next one; noop true leaves
// the record as it is.
type keyChange func(cur authz.KeyRecord) (next authz.KeyRecord, noop bool)

// changeKey applies change to a key's record, retrying from a fresh read
// while other writers come first. op "put" creates a missing record; every
// other op needs one.
func (p *Publisher) changeKey(ctx context.Context, op string, h authz.KeyHash, change keyChange) (uint64, error) {
	for attempt := range maxAttempts {
		rev, err := p.tryChangeKey(ctx, op, h, change)
		if !conflict(err) {
			if err != nil {
				return 0, fmt.Errorf("%s key %s: %w", op, h, err)
			}
			return rev, nil
		}
		if err := retryWait(ctx, attempt); err != nil {
			return 0, fmt.Errorf("%s key %s: %w", op, h, err)
		}
	}
	return 0, fmt.Errorf("%s key %s: %w", op, h, ErrConflict)
}

func (p *Publisher) tryChangeKey(ctx context.Context, op string, h authz.KeyHash, change keyChange) (uint64, error) {
	cur, err := NewStore(p.kv).LoadKey(ctx, h)
	if err != nil {
		return 0, err // unreadable records are changed only by deletion
	}
	subject := KeySubject(h)
	if cur.Presence == authz.Absent {
		if op != "put" {
			return 0, ErrNotFound
		}
		next, _ := change(authz.KeyRecord{})
		val, err := EncodeKey(next)
		if err != nil {
			return 0, err
		}
		return p.kv.Create(ctx, subject, val)
	}
	next, noop := change(cur.Record)
	if noop {
		return cur.Revision, nil
	}
	if err := authz.CheckTransition(&cur.Record, &next); err != nil {
		return 0, err
	}
	val, err := EncodeKey(next)
	if err != nil {
		return 0, err
	}
	return p.kv.Update(ctx, subject, val, cur.Revision)
}

// DeleteKey deletes a key, revoked or not (an unreadable record too), and
// returns the revision of the delete marker; 0 when there was no record.
func (p *Publisher) DeleteKey(ctx context.Context, h authz.KeyHash) (uint64, error) {
	for attempt := range maxAttempts {
		rev, err := p.tryDeleteKey(ctx, h)
		if !conflict(err) {
			if err != nil {
				return 0, fmt.Errorf("delete key %s: %w", h, err)
			}
			return rev, nil
		}
		if err := retryWait(ctx, attempt); err != nil {
			return 0, fmt.Errorf("delete key %s: %w", h, err)
		}
	}
	return 0, fmt.Errorf("delete key %s: %w", h, ErrConflict)
}

func (p *Publisher) tryDeleteKey(ctx context.Context, h authz.KeyHash) (uint64, error) {
	cur, err := NewStore(p.kv).LoadKey(ctx, h)
	switch {
	case cur.Presence == authz.Absent:
		return 0, nil
	case err != nil && !errors.Is(err, ErrBadRecord):
		return 0, err
	}
	return p.publishDelete(ctx, KeySubject(h), cur.Revision)
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
