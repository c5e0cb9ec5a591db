package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/footstep/authz/authz"
)

// MaxValueSize is the largest record value, in bytes, that the bucket accepts
// and that the decoders read.
const MaxValueSize = 1024

// ErrBadRecord is wrapped by every error about a record value or KV key that
// breaks the schema.
var ErrBadRecord = errors.New("bad record")

type keyJSON struct {
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id"`
	State     string `json:"state"`
	ExpiresAt string `json:"expires_at,omitempty"` // RFC 3339 UTC; absent: no expiry
}

// optionalKeyFields may be missing from a key record, or null: old records
// have none of them, and old readers ignore them.
var optionalKeyFields = map[string]bool{"expires_at": true}

type accountJSON struct {
	Balance string `json:"balance"`
}

// EncodeKey returns the JSON value of a key record after validating it.
func EncodeKey(r authz.KeyRecord) ([]byte, error) {
	if err := checkKey(r); err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	v := keyJSON{KeyID: r.KeyID, AccountID: r.AccountID, State: string(r.State)}
	if !r.ExpiresAt.IsZero() {
		v.ExpiresAt = authz.FormatExpiry(r.ExpiresAt)
	}
	return json.Marshal(v)
}

// DecodeKey parses a key record value. Its errors name fields, never values. It rejects values over MaxValueSize,
// anything but one JSON object, duplicate fields, fields of the wrong type,
// missing fields, invalid ids, unknown states and an expires_at that is not
// an RFC 3339 instant in UTC of the years 2000 to 9999 (expires_at itself may
// be missing, null or empty: no expiry). Fields it does not know are ignored, so
// that writers can add fields before every reader knows them.
func DecodeKey(data []byte) (authz.KeyRecord, error) {
	v, ok := decodeKeyCanonical(data)
	if !ok {
		err := decodeStrict(data, map[string]*string{
			"key_id": &v.KeyID, "account_id": &v.AccountID, "state": &v.State, "expires_at": &v.ExpiresAt,
		}, optionalKeyFields)
		if err != nil {
			return authz.KeyRecord{}, fmt.Errorf("decode key: %w", err)
		}
	}
	var err error
	r := authz.KeyRecord{KeyID: v.KeyID, AccountID: v.AccountID, State: authz.KeyState(v.State)}
	if v.ExpiresAt != "" {
		if r.ExpiresAt, err = authz.ParseExpiry(v.ExpiresAt); err != nil {
			return authz.KeyRecord{}, fmt.Errorf("decode key: %w: %w", ErrBadRecord, err)
		}
	}
	if err := checkKey(r); err != nil {
		return authz.KeyRecord{}, fmt.Errorf("decode key: %w", err)
	}
	return r, nil
}

// checkKey validates a record with authz.KeyRecord.Validate, whose errors
// never quote a value, as an ErrBadRecord.
func checkKey(r authz.KeyRecord) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	return nil
}

// EncodeAccount returns the JSON value of an account record.
func EncodeAccount(a authz.Account) ([]byte, error) {
	return json.Marshal(accountJSON{Balance: a.Balance.String()})
}

// DecodeAccount parses an account record value with the rules of DecodeKey;
// the balance is a JSON string holding a decimal (authz.ParseBalance).
func DecodeAccount(data []byte) (authz.Account, error) {
	var v accountJSON
	if err := decodeStrict(data, map[string]*string{"balance": &v.Balance}, nil); err != nil {
		return authz.Account{}, fmt.Errorf("decode account: %w", err)
	}
	b, err := authz.ParseBalance(v.Balance)
	if err != nil {
		return authz.Account{}, fmt.Errorf("decode account: %w: %w", ErrBadRecord, err)
	}
	return authz.Account{Balance: b}, nil
}

// decodeStrict reads one JSON object whose known fields are all strings into
// fields, walking the tokens so that duplicates and trailing data are seen.
// Every field is required but those in optional, which may also be null.
func decodeStrict(data []byte, fields map[string]*string, optional map[string]bool) error {
	if len(data) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, over %d", ErrBadRecord, len(data), MaxValueSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		if err := decodeField(dec, fields, optional, seen); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the object", ErrBadRecord)
	}
	for name := range fields {
		if !seen[name] && !optional[name] {
			return fmt.Errorf("%w: missing field %q", ErrBadRecord, name)
		}
	}
	return nil
}

func decodeField(dec *json.Decoder, fields map[string]*string, optional, seen map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	name, _ := tok.(string)
	dst, known := fields[name]
	if !known {
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%w: unknown field: %w", ErrBadRecord, err)
		}
		return nil
	}
	if seen[name] {
		return fmt.Errorf("%w: duplicate field %q", ErrBadRecord, name)
	}
	seen[name] = true
	tok, err = dec.Token()
	if err != nil {
		return fmt.Errorf("%w: field %q: %w", ErrBadRecord, name, err)
	}
	if tok == nil && optional[name] {
		return nil
	}
	s, ok := tok.(string)
	if !ok {
		return fmt.Errorf("%w: field %q: want a string", ErrBadRecord, name)
	}
	*dst = s
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: want %q", ErrBadRecord, want)
	}
	return nil
}
