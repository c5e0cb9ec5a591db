package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// The JSON Lines format of import and export: one object per line, either
//
//	{"type":"key","key_hash":"<64 hex>","key_id":"key_1","account_id":"acct_1","state":"active"}
//	{"type":"account","account_id":"acct_1","balance":"12.50"}
//
// A key line may carry "expires_at" (RFC 3339, UTC), as key records do.
//
// key_hash is the SHA-256 of the whole key in lowercase hex: plaintext keys
// never appear in the file. Blank lines are skipped; unknown fields are
// refused.
const (
	lineTypeKey     = "key"
	lineTypeAccount = "account"
)

// maxLine bounds one line of an import file, in bytes.
const maxLine = 64 << 10

// maxReported bounds the bad lines named in one error.
const maxReported = 20

// jsonLine is one line as written in the file.
type jsonLine struct {
	Type      string  `json:"type"`
	KeyHash   string  `json:"key_hash,omitempty"`
	KeyID     string  `json:"key_id,omitempty"`
	AccountID string  `json:"account_id"`
	State     string  `json:"state,omitempty"`
	ExpiresAt string  `json:"expires_at,omitempty"`
	Balance   *string `json:"balance,omitempty"`
}

// record is one validated line: a key record or an account balance.
type record struct {
	line    int // 1-based line number in the file
	hash    authz.KeyHash
	key     authz.KeyRecord // set when isKey
	account string          // set when !isKey
	balance authz.Balance
	isKey   bool
}

// errBadLines is wrapped by the error of a file with bad lines.
var errBadLines = errors.New("bad lines; nothing was written")

// readRecords reads and validates a whole file. A bad line is reported with
// its number and what is wrong, never with its content (it may hold a key
// pasted by mistake); any bad line fails the whole file.
func readRecords(r io.Reader, name string) ([]record, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var recs []record
	var bad []string
	n := 0
	for sc.Scan() {
		n++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		rec, err := parseLine(sc.Bytes())
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s:%d: %v", name, n, err))
			continue
		}
		rec.line = n
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, n, fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	if len(bad) > 0 {
		return nil, n, badLinesError(bad)
	}
	return recs, n, nil
}

func badLinesError(bad []string) error {
	return fmt.Errorf("%d %w: %s", len(bad), errBadLines, listClipped(bad))
}

// listClipped joins the first maxReported items and counts the rest.
func listClipped(items []string) string {
	shown := items[:min(len(items), maxReported)]
	s := strings.Join(shown, "; ")
	if len(items) > len(shown) {
		s += fmt.Sprintf("; and %d more", len(items)-len(shown))
	}
	return s
}

// parseLine validates one line. Its errors name fields, never values.
func parseLine(b []byte) (record, error) {
	var l jsonLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return record{}, fmt.Errorf("not a JSON object of the import format: %s", jsonProblem(err))
	}
	if dec.More() {
		return record{}, errors.New("more than one JSON value on the line")
	}
	switch l.Type {
	case lineTypeKey:
		return parseKeyLine(l)
	case lineTypeAccount:
		return parseAccountLine(l)
	default:
		return record{}, errors.New(`type: want "key" or "account"`)
	}
}

func parseKeyLine(l jsonLine) (record, error) {
	if l.Balance != nil {
		return record{}, errors.New("balance: belongs on an account line")
	}
	h, err := authz.ParseKeyHash(l.KeyHash)
	if err != nil {
		return record{}, errors.New("key_hash: want the SHA-256 of the key as 64 lowercase hex digits")
	}
	rec := authz.KeyRecord{KeyID: l.KeyID, AccountID: l.AccountID, State: authz.KeyState(l.State)}
	if l.ExpiresAt != "" {
		if rec.ExpiresAt, err = authz.ParseExpiry(l.ExpiresAt); err != nil {
			return record{}, err // "expires_at: want ..."
		}
	}
	if err := rec.Validate(); err != nil {
		return record{}, fmt.Errorf("%w: %w", events.ErrBadRecord, err) // "bad record: <field>: want ..."
	}
	return record{isKey: true, hash: h, key: rec}, nil
}

func parseAccountLine(l jsonLine) (record, error) {
	switch {
	case l.KeyHash != "" || l.KeyID != "" || l.State != "" || l.ExpiresAt != "":
		return record{}, errors.New("key_hash, key_id, state and expires_at belong on a key line")
	case authz.CheckID("account_id", l.AccountID) != nil:
		return record{}, authz.CheckID("account_id", l.AccountID)
	case l.Balance == nil:
		return record{}, errors.New(`balance: missing; want a decimal string such as "12.50"`)
	}
	b, err := authz.ParseBalance(*l.Balance)
	if err != nil {
		return record{}, errors.New(`balance: want a decimal string such as "12.50" or "-3"`)
	}
	return record{account: l.AccountID, balance: b}, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %s: want a %s", typeErr.Field, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("JSON syntax error at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The name is not shown: it may be a key pasted by mistake.
		return "unknown field (allowed: type, key_hash, key_id, account_id, state, expires_at, balance)"
	default:
		return "invalid JSON"
	}
}

// writeLine writes rec as one line of the format.
func writeLine(w io.Writer, rec record) error {
	l := jsonLine{Type: lineTypeAccount, AccountID: rec.account}
	if rec.isKey {
		l = jsonLine{Type: lineTypeKey, KeyHash: rec.hash.String(), KeyID: rec.key.KeyID, AccountID: rec.key.AccountID, State: string(rec.key.State)}
		if !rec.key.ExpiresAt.IsZero() {
			l.ExpiresAt = authz.FormatExpiry(rec.key.ExpiresAt)
		}
	} else {
		b := rec.balance.String()
		l.Balance = &b
	}
	return writeJSON(w, l)
}
