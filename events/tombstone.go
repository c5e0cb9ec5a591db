package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/footstep/authz/authz"
)

// Tombstone is the durable mark that a key was revoked: the record
// "revoked.<hash>" of the bucket. The bucket keeps one value per KV key, so a
// revoked record written over by an active one leaves no trace in the key's
// own history; the tombstone does. While it exists, a present record of the
// key is revoked whatever state it holds. Its presence is what counts: its
// fields say which key it was and when, for people reading the bucket.
type Tombstone struct {
	KeyID     string    // key_id of the revoked record
	AccountID string    // account_id of the revoked record
	Revision  uint64    // revision of the key record when it was revoked; 0 when unknown
	At        time.Time // when the tombstone was written, UTC
}

type tombstoneJSON struct {
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id"`
	Revision  uint64 `json:"revision"`
	At        string `json:"at"`
}

// NewTombstone returns the tombstone of a revoked record read at revision rev.
func NewTombstone(rec authz.KeyRecord, rev uint64, at time.Time) Tombstone {
	return Tombstone{KeyID: rec.KeyID, AccountID: rec.AccountID, Revision: rev, At: at.UTC().Truncate(time.Second)}
}

// Record returns the revoked record the tombstone stands for.
func (t Tombstone) Record() authz.KeyRecord {
	return authz.KeyRecord{KeyID: t.KeyID, AccountID: t.AccountID, State: authz.StateRevoked}
}

// EncodeTombstone returns the JSON value of a tombstone after validating it.
func EncodeTombstone(t Tombstone) ([]byte, error) {
	if err := checkKey(t.Record()); err != nil {
		return nil, fmt.Errorf("encode tombstone: %w", err)
	}
	return json.Marshal(tombstoneJSON{
		KeyID: t.KeyID, AccountID: t.AccountID, Revision: t.Revision, At: t.At.UTC().Format(time.RFC3339),
	})
}

// DecodeTombstone parses a tombstone value: one JSON object of at most
// MaxValueSize bytes with valid key_id and account_id; revision and at are
// optional. Its errors wrap ErrBadRecord and never quote a value. A
// tombstone that does not decode still marks its key revoked.
func DecodeTombstone(data []byte) (Tombstone, error) {
	if len(data) > MaxValueSize {
		return Tombstone{}, fmt.Errorf("decode tombstone: %w: %d bytes, over %d", ErrBadRecord, len(data), MaxValueSize)
	}
	var v tombstoneJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil || dec.More() {
		return Tombstone{}, fmt.Errorf("decode tombstone: %w: want one JSON object", ErrBadRecord)
	}
	t := Tombstone{KeyID: v.KeyID, AccountID: v.AccountID, Revision: v.Revision}
	if err := checkKey(t.Record()); err != nil {
		return Tombstone{}, fmt.Errorf("decode tombstone: %w", err)
	}
	if v.At != "" {
		at, err := time.Parse(time.RFC3339, v.At)
		if err != nil {
			return Tombstone{}, fmt.Errorf("decode tombstone: %w: at: want RFC 3339", ErrBadRecord)
		}
		t.At = at.UTC()
	}
	return t, nil
}
