package events

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Loader reads single records from the bucket, for cache misses (it is the
// cache.Loader of footstep-authz). With
// ReadFromLeader it reads through the stream's leader, so that a follower
// that is behind or partitioned never answers; without it, it reads with the
// client's direct get (any replica). A key's answer is its effective state:
// a present record is revoked while the key has a tombstone (tombstone.go).
// While the watcher given to UseIndex builds its key index after a lazy
// start, the Loader reads through it instead (loader_build.go).
type Loader struct {
	kv    jetstream.KeyValue
	nc    *nats.Conn // nil: direct gets through kv
	index atomic.Pointer[WatchIndex]
	// behind counts reads older than the watch's view, each retried.
	behind atomic.Uint64
}

// LoaderOption configures a Loader.
type LoaderOption func(*Loader)

// ReadFromLeader makes the Loader read through the stream leader over nc (the
// connection the bucket was opened on); nc nil keeps direct gets.
func ReadFromLeader(nc *nats.Conn) LoaderOption { return func(s *Loader) { s.nc = nc } }

// WatchIndex is what a Loader learns from a watcher's view of the bucket:
// whether a key is revoked for good, so that a miss needs no second read, and
// the last revision of each record the watch applied, so that a read older
// than that is never taken for the record's state. Watcher implements it.
type WatchIndex interface {
	// Revoked reports whether h is revoked for good (a tombstone, or a
	// revoked record seen since the key's last deletion), with the revision
	// at which it became so. known is false when the index cannot vouch
	// for the bucket as of revision rev: it has not applied rev yet.
	Revoked(h authz.KeyHash, rev uint64) (at uint64, revoked, known bool)
	// Floor returns a revision no read of the record at kvKey may be older
	// than: the watch applied it. 0 when there is none.
	Floor(kvKey string) uint64
}

// NewLoader returns a Loader reading from kv.
func NewLoader(kv jetstream.KeyValue, opts ...LoaderOption) *Loader {
	s := &Loader{kv: kv}
	for _, o := range opts {
		o(s)
	}
	return s
}

// UseIndex makes the Loader consult idx: LoadKey asks it before reading a
// tombstone, and both loads retry a read older than its floor; nil stops it.
// It may be called at any time, typically once the Watcher exists.
func (s *Loader) UseIndex(idx WatchIndex) {
	if idx == nil {
		s.index.Store(nil)
		return
	}
	s.index.Store(&idx)
}

// LoadKey reads the effective entry of a key hash. A record that exists and
// parses is Present with its revision; when it is not revoked but the key has
// a tombstone, it is Present and revoked with the later of the two
// revisions. No record (never written, deleted or purged) is Absent with a nil
// error and the marker's revision (0 when never written, or when reading
// with direct gets). A record that does not parse is Unreadable with its
// revision and an error wrapping ErrBadRecord. A NATS failure, including one
// reading the tombstone, is Unreadable and the error: it fails closed.
func (s *Loader) LoadKey(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	if b := s.builder(); b != nil {
		if e, building, err := s.loadKeyWhileBuilding(ctx, b, h); building {
			return e, err
		}
	}
	e, err := s.loadStored(ctx, h)
	if err != nil || e.Presence != authz.Present || e.Record.State == authz.StateRevoked {
		return e, err
	}
	if idx := s.index.Load(); idx != nil {
		if at, revoked, known := (*idx).Revoked(h, e.Revision); known {
			return revokedEntry(e, at, revoked), nil
		}
	}
	t, err := s.loadTombstone(ctx, h)
	if err != nil {
		return authz.KeyEntry{Revision: e.Revision}, fmt.Errorf("load key %s: %w", h, err)
	}
	return revokedEntry(e, t.revision, t.present), nil
}

// revokedEntry returns e, revoked as of the later revision when revoked is true.
func revokedEntry(e authz.KeyEntry, at uint64, revoked bool) authz.KeyEntry {
	if revoked {
		e.Record.State = authz.StateRevoked
		e.Revision = max(e.Revision, at)
	}
	return e
}

// loadStored reads a key's record as stored, ignoring its tombstone.
func (s *Loader) loadStored(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	e, err := s.readFresh(ctx, KeyKVKey(h))
	return keyEntryOf(h, e, err)
}

// keyEntryOf turns the last message of key.<h>, or the failure to read it,
// into the record as stored.
func keyEntryOf(h authz.KeyHash, e rawEntry, err error) (authz.KeyEntry, error) {
	rec, p, err := decodeRecord(e, err, DecodeKey, func() string { return "key " + h.String() })
	return authz.KeyEntry{Revision: e.revision, Presence: p, Record: rec}, err
}

// decodeRecord decodes the last message of a record, read no older than the
// index's floor (readFresh, readRecord), or the failure to read it: Present
// with its revision, Absent with the marker's revision (or 0), or Unreadable
// with the error (a record that does not decode keeps its revision, and its
// error names the record as what describes).
func decodeRecord[T any](e rawEntry, err error, decode func([]byte) (T, error), what func() string) (T, authz.Presence, error) {
	var zero T
	if err != nil || e.op != jetstream.KeyValuePut {
		return zero, absentIf(err), err
	}
	rec, err := decode(e.value)
	if err != nil {
		return zero, authz.Unreadable, fmt.Errorf("load %s: %w", what(), err)
	}
	return rec, authz.Present, nil
}

// storedTombstone is a tombstone as read from the bucket.
type storedTombstone struct {
	present  bool
	revision uint64 // of the tombstone, or of its delete marker
	value    Tombstone
	err      error // set when present and the value does not decode
}

// loadTombstone reads a key's tombstone. A value that does not decode is
// still a tombstone.
func (s *Loader) loadTombstone(ctx context.Context, h authz.KeyHash) (storedTombstone, error) {
	e, err := s.read(ctx, TombstoneKVKey(h))
	if err != nil {
		return storedTombstone{}, err
	}
	t := storedTombstone{present: e.op == jetstream.KeyValuePut && e.revision > 0, revision: e.revision}
	if t.present {
		t.value, t.err = DecodeTombstone(e.value)
	}
	return t, nil
}

// LoadAccount reads the record of an account, with the outcomes of LoadKey.
func (s *Loader) LoadAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	if !authz.ValidID(id) {
		return authz.AccountEntry{}, fmt.Errorf("load account: %w: invalid account id", ErrBadRecord)
	}
	e, err := s.readRecord(ctx, AccountKVKey(id))
	acct, p, err := decodeRecord(e, err, DecodeAccount, func() string { return "account " + id })
	return authz.AccountEntry{Revision: e.revision, Presence: p, Account: acct}, err
}

// ErrBehindWatch is returned for a record whose every read within the load's
// deadline was older than a change the watch had already applied: the state
// the bucket answered is outdated, so there is none (the request fails
// closed, and nothing is cached).
var ErrBehindWatch = errors.New("bucket answered a state older than the watch has applied")

// readFresh reads a KV key as read does, and reads it again, backing off,
// while the answer is older than the index's floor for it: a server that is behind
// the watch (a stream leader being replaced, a lagging follower with direct
// gets) answered, and will catch up.
func (s *Loader) readFresh(ctx context.Context, kvKey string) (rawEntry, error) {
	wait := behindBackoff
	for {
		e, err := s.read(ctx, kvKey)
		idx := s.index.Load()
		if err != nil || idx == nil {
			return e, err
		}
		f := (*idx).Floor(kvKey)
		if e.revision >= f || (s.nc == nil && e.op != jetstream.KeyValuePut) {
			// A direct get tells no revision for a deleted record.
			return e, nil
		}
		s.behind.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return rawEntry{}, fmt.Errorf("get %s from bucket %s: %w (read revision %d, watch applied %d)",
				safeKVKey(kvKey), s.kv.Bucket(), ErrBehindWatch, e.revision, f)
		case <-t.C:
		}
		wait = min(2*wait, maxBehindBackoff)
	}
}

// The pauses between reads of a record that came back behind the watch.
const (
	behindBackoff    = 5 * time.Millisecond
	maxBehindBackoff = 80 * time.Millisecond
)

// BehindReads returns how many reads came back older than the watch's view
// of their record, each retried (readFresh).
func (s *Loader) BehindReads() uint64 { return s.behind.Load() }

// read returns the last message of a KV key: a put, or a marker (op delete,
// revision 0 when there is no message at all), or an error when NATS did
// not answer.
func (s *Loader) read(ctx context.Context, kvKey string) (rawEntry, error) {
	if s.nc == nil {
		return s.directGet(ctx, kvKey)
	}
	e, found, err := leaderGet(ctx, s.nc, s.kv.Bucket(), kvKey)
	switch {
	case err != nil:
		return rawEntry{}, fmt.Errorf("get %s from bucket %s: %w", safeKVKey(kvKey), s.kv.Bucket(), err)
	case !found:
		return rawEntry{op: jetstream.KeyValueDelete}, nil
	}
	return e, nil
}

func (s *Loader) directGet(ctx context.Context, kvKey string) (rawEntry, error) {
	e, err := s.kv.Get(ctx, kvKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return rawEntry{op: jetstream.KeyValueDelete}, nil
	case err != nil:
		return rawEntry{}, fmt.Errorf("get %s from bucket %s: %w", safeKVKey(kvKey), s.kv.Bucket(), err)
	}
	return rawEntry{revision: e.Revision(), op: jetstream.KeyValuePut, value: e.Value()}, nil
}

// absentIf returns Absent for a lookup that answered "no record", and
// Unreadable for one that failed.
func absentIf(err error) authz.Presence {
	if err == nil {
		return authz.Absent
	}
	return authz.Unreadable
}
