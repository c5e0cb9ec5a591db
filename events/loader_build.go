package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// While the watcher builds its key index after a lazy start (build.go), its
// floors and terminal state cover only what it has read so far: a Loader
// reads through it instead. Records are read with snapshot reads, taken only
// from a server that had applied the build's start and at least the floor
// of the record, and a key's revoked-is-terminal verdict comes from the
// watcher (build_verdict.go).

// builder returns the watcher the Loader reads through while it builds its
// index; nil without one.
func (s *Loader) builder() indexBuilder {
	idx := s.index.Load()
	if idx == nil {
		return nil
	}
	b, _ := (*idx).(indexBuilder)
	return b
}

// readRecord reads a KV key as readFresh does, or with a snapshot read while
// the index is being built.
func (s *Loader) readRecord(ctx context.Context, kvKey string) (rawEntry, error) {
	if b := s.builder(); b != nil {
		snap, building, err := s.readSnapshotFresh(ctx, b, kvKey)
		if building {
			return lastOf(snap, kvKey), err
		}
	}
	return s.readFresh(ctx, kvKey)
}

// loadKeyWhileBuilding is LoadKey while the index is being built; building
// is false once it is complete, and nothing was read.
func (s *Loader) loadKeyWhileBuilding(ctx context.Context, b indexBuilder, h authz.KeyHash) (authz.KeyEntry, bool, error) {
	snap, building, err := s.readSnapshotFresh(ctx, b, KeyKVKey(h), TombstoneKVKey(h))
	if !building {
		return authz.KeyEntry{}, false, nil
	}
	e, err := keyEntryOf(h, lastOf(snap, KeyKVKey(h)), err)
	if err != nil || e.Presence != authz.Present || e.Record.State == authz.StateRevoked {
		return e, true, err
	}
	at, revoked, err := b.revokedWhileBuilding(ctx, h, snap)
	if err != nil {
		return authz.KeyEntry{Revision: e.Revision}, true, fmt.Errorf("load key %s: %w", h, err)
	}
	return revokedEntry(e, at, revoked), true, nil
}

// readSnapshotFresh reads kvKeys (the first one floored) with snapshot reads
// until one comes from a server that had applied the build's start and the
// first key's floor, backing off as readFresh does. A read that fails is
// tried again too, as a read through the stream leader is, until ctx ends.
func (s *Loader) readSnapshotFresh(ctx context.Context, b indexBuilder, kvKeys ...string) (snapshot, bool, error) {
	wait := behindBackoff
	for {
		snap, start, building, err := b.readWhileBuilding(ctx, kvKeys...)
		if !building {
			return snapshot{}, false, nil
		}
		f := s.floorOf(kvKeys[0])
		switch {
		case errors.Is(err, errSnapshotUnsupported):
			return snapshot{}, true, s.readErr(kvKeys[0], err)
		case err == nil && snap.upTo >= start && lastOf(snap, kvKeys[0]).revision >= f:
			return snap, true, nil
		case err == nil || errors.Is(err, errNoPosition):
			s.behind.Add(1)
			err = fmt.Errorf("%w (read at stream revision %d, index build started at %d, watch applied %d)", ErrBehindWatch, snap.upTo, start, f)
		}
		if !sleepCtx(ctx, wait) {
			return snapshot{}, true, s.readErr(kvKeys[0], err)
		}
		wait = min(2*wait, maxBehindBackoff)
	}
}

func (s *Loader) readErr(kvKey string, err error) error {
	return fmt.Errorf("get %s from bucket %s: %w", safeKVKey(kvKey), s.kv.Bucket(), err)
}

// floorOf returns the index's floor for kvKey; 0 without an index.
func (s *Loader) floorOf(kvKey string) uint64 {
	if idx := s.index.Load(); idx != nil {
		return (*idx).Floor(kvKey)
	}
	return 0
}

// lastOf returns the last message of kvKey in snap, or a marker of revision
// 0 when it has none (never written), as read does.
func lastOf(snap snapshot, kvKey string) rawEntry {
	if e, ok := snap.entries[kvKey]; ok {
		return e
	}
	return rawEntry{op: jetstream.KeyValueDelete}
}
