package authz

import (
	"errors"
	"time"
)

// The instants an expires_at may name: anything outside is a mistake (a
// zero or a unit error), not a policy.
var (
	minExpiry = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxExpiry = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // exclusive: year 9999 is the last
)

// expiryRule describes a valid expires_at in errors.
const expiryRule = "want an RFC 3339 instant in UTC (Z), in the years 2000 to 9999"

// ErrExpiryFormat is returned for an expires_at that breaks expiryRule.
var ErrExpiryFormat = errors.New("expires_at: " + expiryRule)

// ParseExpiry parses an expires_at value: RFC 3339 with the "Z" offset (UTC),
// fractional seconds allowed, in the years 2000 to 9999.
func ParseExpiry(s string) (time.Time, error) {
	if len(s) == 0 || s[len(s)-1] != 'Z' {
		return time.Time{}, ErrExpiryFormat
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, ErrExpiryFormat
	}
	if err := CheckExpiry(t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// CheckExpiry reports whether t may be a key's expiry instant; the zero time
// means no expiry and is valid.
func CheckExpiry(t time.Time) error {
	if t.IsZero() || !t.Before(minExpiry) && t.Before(maxExpiry) {
		return nil
	}
	return ErrExpiryFormat
}

// FormatExpiry returns t as an expires_at value: RFC 3339 in UTC, with as
// many fractional digits as t needs.
func FormatExpiry(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ExpiredAt reports whether the record has an expiry and now is at or past
// it. From that instant the key answers as a revoked key.
func (r KeyRecord) ExpiredAt(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// ErrExpiredTerminal is returned for a change to an expired key other than
// its revocation or deletion. It matches ErrRevokedTerminal with errors.Is:
// an expired key is revoked for every purpose.
var ErrExpiredTerminal error = expiredTerminal{}

type expiredTerminal struct{}

func (expiredTerminal) Error() string {
	return "key has expired: an expired key is revoked and can only be revoked or deleted"
}

func (expiredTerminal) Is(target error) bool { return target == ErrRevokedTerminal }

// CheckTransitionAt reports whether a key whose current record is prev (nil
// when there is none) may become next (nil for a deletion) at instant now:
// a revoked key can only be deleted, and a key expired at now can only be
// revoked or deleted.
func CheckTransitionAt(prev, next *KeyRecord, now time.Time) error {
	if err := CheckTransition(prev, next); err != nil {
		return err
	}
	if prev != nil && next != nil && prev.ExpiredAt(now) && next.State != StateRevoked {
		return ErrExpiredTerminal
	}
	return nil
}
