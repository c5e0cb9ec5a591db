package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeyPrefix starts every Footstep API key.
const KeyPrefix = "sk_live_"

// MaxKeySuffix is the most characters a key may have after KeyPrefix.
const MaxKeySuffix = 200

// ErrKeyFormat is returned for a string that is not a well-formed API key.
var ErrKeyFormat = errors.New("not an sk_live_ API key: want sk_live_ then 1 to 200 of [A-Za-z0-9_-]")

// APIKey is a plaintext API key. It prints, formats and logs as a redacted
// placeholder, so that a key passed to a logger or an error by mistake does
// not leak; use Hash to refer to a key anywhere outside the request.
type APIKey string

// ParseAPIKey returns s as an APIKey if it is well-formed.
func ParseAPIKey(s string) (APIKey, error) {
	if !validKey(s) {
		return "", ErrKeyFormat
	}
	return APIKey(s), nil
}

func validKey(s string) bool {
	n := len(s) - len(KeyPrefix)
	if n < 1 || n > MaxKeySuffix || s[:len(KeyPrefix)] != KeyPrefix {
		return false
	}
	for i := len(KeyPrefix); i < len(s); i++ {
		if !idByte(s[i]) {
			return false
		}
	}
	return true
}

// idByte reports whether b is in [A-Za-z0-9_-], the alphabet of keys and ids.
func idByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-'
}

const redacted = "sk_live_[REDACTED]"

// String returns a redacted placeholder, never the key.
func (APIKey) String() string { return redacted }

// GoString returns a redacted placeholder, never the key.
func (APIKey) GoString() string { return redacted }

// Format writes a redacted placeholder for every verb, never the key.
func (APIKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes slog print a redacted placeholder, never the key.
func (APIKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns a redacted placeholder, never the key.
func (APIKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Hash returns the SHA-256 of the whole key, the only form in which a key is
// stored, published or logged.
func (k APIKey) Hash() KeyHash {
	// A plain []byte(k) allocates for keys over 32 bytes; every well-formed
	// key fits this stack buffer.
	var buf [len(KeyPrefix) + MaxKeySuffix]byte
	if len(k) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], k)])
	}
	return sha256.Sum256([]byte(k))
}

// KeyHash is the SHA-256 of a whole API key.
type KeyHash [sha256.Size]byte

// ErrHashFormat is returned for a string that is not 64 lowercase hex digits.
var ErrHashFormat = errors.New("not a key hash: want 64 lowercase hex digits")

// ParseKeyHash parses the lowercase hex form that String returns.
func ParseKeyHash(s string) (KeyHash, error) {
	var h KeyHash
	if len(s) != 2*len(h) {
		return h, ErrHashFormat
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, ErrHashFormat
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, ErrHashFormat
	}
	return h, nil
}

// String returns the hash as 64 lowercase hex digits.
func (h KeyHash) String() string { return hex.EncodeToString(h[:]) }

// MaxIDLen is the longest key id or account id.
const MaxIDLen = 64

// idRule describes a valid id in errors, which never quote the id itself: a
// rejected id may be a plaintext key written by mistake.
const idRule = "want 1 to 64 of [A-Za-z0-9_-], not starting with the API key prefix"

// CheckID returns an error naming field ("key_id", "--account", ...) when s
// is not a valid id, and nil when it is. The error never quotes s.
func CheckID(field, s string) error {
	if ValidID(s) {
		return nil
	}
	return errors.New(field + ": " + idRule)
}

// ValidID reports whether s is a valid key id or account id: 1 to 64
// characters of [A-Za-z0-9_-]. An id that starts with the key prefix is
// refused: it would put what looks like a key into headers and logs.
func ValidID(s string) bool {
	if len(s) < 1 || len(s) > MaxIDLen || strings.HasPrefix(s, KeyPrefix) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return false
		}
	}
	return true
}
