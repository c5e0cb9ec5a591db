package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// UsageSubject is the core NATS subject of key usage summaries.
const UsageSubject = "footstep.events.key_used"

// DefaultUsageBucket is the key-value bucket that keeps the latest usage of
// each key, merged across replicas, under UsagePrefix and the key's hash.
const DefaultUsageBucket = "footstep-usage"

// UsagePrefix starts the KV key of a key's usage record: "usage.<hash>".
const UsagePrefix = "usage."

// maxUsageValueSize bounds a usage record: ids, hash, two instants and a
// count per code fit in well under 1 KiB.
const maxUsageValueSize = 2048

// UsageKVKey returns the KV key of a key's usage record.
func UsageKVKey(h authz.KeyHash) string { return UsagePrefix + h.String() }

// KeyUsage is how a key was used: when it was first and last decided on and
// how often with each code. As a summary published on UsageSubject it covers
// one replica's window; as the record in the usage bucket it is the merge of
// every summary since the record was created (MergeUsage).
type KeyUsage struct {
	KeyID     string            `json:"key_id"`
	AccountID string            `json:"account_id"`
	KeyHash   string            `json:"key_hash"`
	FirstSeen time.Time         `json:"first_seen"` // RFC 3339, UTC
	LastSeen  time.Time         `json:"last_seen"`  // RFC 3339, UTC
	Counts    map[string]uint64 `json:"counts"`     // by decision code ("ok", "key_revoked", ...)
	// Replica is the replica that decided (a summary) or that last merged
	// a summary into the record (the bucket).
	Replica string `json:"replica"`
}

// UsageBatch is the JSON body published on UsageSubject: the summaries of
// one replica's window, at most a few hundred per message.
type UsageBatch struct {
	Replica string     `json:"replica"`
	Keys    []KeyUsage `json:"keys"`
}

// MergeUsage returns the merge of a stored usage record and a new summary of
// the same key: the earliest first_seen, the latest last_seen, counts
// summed, and ids and replica from the one last seen.
func MergeUsage(stored, next KeyUsage) KeyUsage {
	m := next
	if stored.LastSeen.After(next.LastSeen) {
		m = stored
	}
	m.FirstSeen = next.FirstSeen
	if !stored.FirstSeen.IsZero() && stored.FirstSeen.Before(next.FirstSeen) {
		m.FirstSeen = stored.FirstSeen
	}
	m.Counts = make(map[string]uint64, len(stored.Counts)+len(next.Counts))
	for _, counts := range []map[string]uint64{stored.Counts, next.Counts} {
		for code, n := range counts {
			m.Counts[code] += n
		}
	}
	return m
}

// DecodeUsage parses a usage record or summary. It checks the ids and the
// hash, so that a value holding something else is not shown as usage.
func DecodeUsage(data []byte) (KeyUsage, error) {
	if len(data) > maxUsageValueSize {
		return KeyUsage{}, fmt.Errorf("decode usage: %w: %d bytes, over %d", ErrBadRecord, len(data), maxUsageValueSize)
	}
	var u KeyUsage
	if err := json.Unmarshal(data, &u); err != nil {
		return KeyUsage{}, fmt.Errorf("decode usage: %w: want one JSON object", ErrBadRecord)
	}
	if _, err := authz.ParseKeyHash(u.KeyHash); err != nil || !authz.ValidID(u.KeyID) || !authz.ValidID(u.AccountID) {
		return KeyUsage{}, fmt.Errorf("decode usage: %w: key_id, account_id or key_hash", ErrBadRecord)
	}
	return u, nil
}

// OpenUsageBucket binds to the usage bucket, creating it when missing with
// one value per key and replicas replicas. Usage is advisory: the bucket has
// none of the key bucket's guarantees and needs none.
func OpenUsageBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	if !ValidBucketName(name) {
		return nil, fmt.Errorf("open usage bucket %q: %w", authz.Clip(name), ErrBucketName)
	}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: "footstep-authz last use of each API key", History: 1,
			Storage: jetstream.FileStorage, Replicas: max(replicas, 1), MaxValueSize: maxUsageValueSize,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open usage bucket %s: %w", name, err)
	}
	return kv, nil
}

// GetUsage reads a key's usage record from the usage bucket; ErrNotFound
// when the key was never recorded.
func GetUsage(ctx context.Context, kv jetstream.KeyValue, h authz.KeyHash) (KeyUsage, uint64, error) {
	e, err := kv.Get(ctx, UsageKVKey(h))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return KeyUsage{}, 0, fmt.Errorf("usage of %s: %w", h, ErrNotFound)
	case err != nil:
		return KeyUsage{}, 0, fmt.Errorf("usage of %s: %w", h, err)
	}
	u, err := DecodeUsage(e.Value())
	return u, e.Revision(), err
}

// StoreUsage merges a summary into the key's usage record, with a revision
// check so that replicas merging at once do not lose each other's counts.
func StoreUsage(ctx context.Context, kv jetstream.KeyValue, h authz.KeyHash, next KeyUsage) error {
	for attempt := range maxAttempts {
		stored, rev, err := GetUsage(ctx, kv, h)
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadRecord) {
			return err
		}
		val, err := json.Marshal(MergeUsage(stored, next))
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, UsageKVKey(h), val)
		} else {
			_, err = kv.Update(ctx, UsageKVKey(h), val, rev)
		}
		if !conflict(err) {
			return err
		}
		if err := retryWait(ctx, attempt); err != nil {
			return err
		}
	}
	return fmt.Errorf("store usage of %s: %w", h, ErrConflict)
}
