package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

// rawOut describes a record that does not decode by its KV entry's
// metadata: never its value, which may hold a key written there by mistake.
type rawOut struct {
	KVKey      string    `json:"kv_key"`
	Unreadable bool      `json:"unreadable"`
	Problem    string    `json:"problem"` // why it does not decode; names fields, never values
	Revision   uint64    `json:"revision"`
	Created    time.Time `json:"created"`
	SizeBytes  int       `json:"size_bytes"`
	// Tombstone is set for a key with a revocation tombstone.
	Tombstone bool `json:"tombstone,omitempty"`
}

func (r rawOut) header() []string {
	return []string{"KV_KEY", "UNREADABLE", "REVISION", "CREATED", "SIZE_BYTES", "TOMBSTONE", "PROBLEM"}
}

func (r rawOut) row() []string {
	return []string{r.KVKey, strconv.FormatBool(r.Unreadable), strconv.FormatUint(r.Revision, 10),
		r.Created.Format(time.RFC3339), strconv.Itoa(r.SizeBytes), strconv.FormatBool(r.Tombstone), r.Problem}
}

// errChangedWhileRead is returned when an unreadable record was replaced
// between two reads.
var errChangedWhileRead = errors.New("the record changed while it was read: run the command again")

// inspectRaw reads revision rev of kvKey, which decode refused, and
// describes it.
func (b bucket) inspectRaw(ctx context.Context, kvKey string, rev uint64, decode func([]byte) error) (rawOut, error) {
	entry, err := b.kv.GetRevision(ctx, kvKey, rev)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rawOut{}, errChangedWhileRead
	}
	if err != nil {
		return rawOut{}, fmt.Errorf("read %s: %w", kvKey, err)
	}
	derr := decode(entry.Value())
	if derr == nil {
		return rawOut{}, errChangedWhileRead
	}
	return rawOut{
		KVKey: kvKey, Unreadable: true, Problem: problem(derr), Revision: entry.Revision(),
		Created: entry.Created().UTC(), SizeBytes: len(entry.Value()),
	}, nil
}

// errTombstoned refuses to overwrite the unreadable record of a revoked key.
var errTombstoned = errors.New("the key has a revocation tombstone and revoked is terminal: key delete, then key put")

// overwriteUnreadable replaces a key's record that does not decode with rec,
// only if the record is unchanged since read and the key has no tombstone.
// A readable or missing record gets an ordinary put, with all its checks.
func (b bucket) overwriteUnreadable(ctx context.Context, h authz.KeyHash, rec authz.KeyRecord) (uint64, error) {
	v, err := b.InspectKey(ctx, h)
	switch {
	case errors.Is(err, events.ErrNotFound) || err == nil:
		return b.PutKey(ctx, h, rec)
	case !errors.Is(err, events.ErrBadRecord):
		return 0, err
	case v.Tombstone != nil:
		return 0, errTombstoned
	}
	val, err := events.EncodeKey(rec)
	if err != nil {
		return 0, err
	}
	rev, err := b.kv.Update(ctx, events.KeyKVKey(h), val, v.Stored.Revision)
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errChangedWhileRead
	}
	return rev, err
}

// problem is the part of a decoding error after "bad record: ": it names
// fields, never values.
func problem(err error) string {
	s := err.Error()
	marker := events.ErrBadRecord.Error() + ": "
	if i := strings.Index(s, marker); i >= 0 {
		return s[i+len(marker):]
	}
	return s
}

func decodeKeyValue(b []byte) error {
	_, err := events.DecodeKey(b)
	return err
}

func decodeAccountValue(b []byte) error {
	_, err := events.DecodeAccount(b)
	return err
}

// errNotInSchema is the problem of a KV key that names no footstep record.
var errNotInSchema = errors.New("not a key, account or tombstone record")

// decodeValue decodes a value as the kind of record its KV key names.
func decodeValue(kvKey string, b []byte) error {
	switch events.ParseKVKey(kvKey).Kind {
	case events.KindKey:
		return decodeKeyValue(b)
	case events.KindAccount:
		return decodeAccountValue(b)
	case events.KindTombstone:
		_, err := events.DecodeTombstone(b)
		return err
	}
	return errNotInSchema
}

// safeKVKey returns a KV key that follows the schema as it is, and of any
// other only its known prefix and length: a key written by mistake in
// place of its hash must not be shown.
func safeKVKey(name string) string {
	if events.ParseKVKey(name).Kind != events.KindUnknown {
		return name
	}
	prefix := ""
	for _, p := range []string{events.KVKeyPrefix, events.KVAccountPrefix, events.KVTombstonePrefix} {
		if strings.HasPrefix(name, p) {
			prefix = p
		}
	}
	return fmt.Sprintf("%s(%d characters not shown)", prefix, len(name)-len(prefix))
}
