package authz_test

import (
	"math/big"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

// The fuzz targets assert what STYLE.md asks of every parser: it never
// panics, and it never allows what it should deny. Their oracles are written
// independently of the code under test, from DESIGN.md.

// wellFormed is the key format of DESIGN.md as a regular expression.
var wellFormed = regexp.MustCompile(`^sk_live_[A-Za-z0-9_-]{1,200}$`)

// splitValues turns one fuzzed string into 0, 1 or several header values.
func splitValues(s string, n uint8) []string {
	switch n % 3 {
	case 0:
		return nil
	case 1:
		return []string{s}
	}
	return strings.Split(s, "\x00")
}

// queryHasKey is the oracle for the query rule: some parameter name or value
// of target's query, after up to three rounds of percent-decoding (lenient,
// as many servers are, and strict), '+' read as a space, surrounding white
// space and a "Bearer " scheme dropped, starts with sk_live_.
func queryHasKey(target string) bool {
	_, query, ok := strings.Cut(target, "?")
	if !ok {
		return false
	}
	for _, param := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		name, value, _ := strings.Cut(param, "=")
		for _, part := range []string{name, value} {
			for _, decoded := range decodings(part) {
				if startsWithKey(decoded) {
					return true
				}
			}
		}
	}
	return false
}

func decodings(s string) []string {
	out := []string{s}
	lenient, strict := s, s
	for range 3 {
		lenient = lenientUnescape(lenient)
		out = append(out, lenient)
		if d, err := url.QueryUnescape(strict); err == nil {
			strict = d
			out = append(out, strict)
		}
	}
	return out
}

func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func startsWithKey(s string) bool {
	s = strings.Trim(strings.ReplaceAll(s, "+", " "), " \t")
	if len(s) > 7 && strings.EqualFold(s[:6], "bearer") && (s[6] == ' ' || s[6] == '\t') {
		s = strings.Trim(s[7:], " \t")
	}
	return strings.HasPrefix(s, authz.KeyPrefix)
}

func FuzzExtract(f *testing.F) {
	for _, tt := range extractTests {
		mcp := tt.req.Surface == authz.SurfaceMCP
		f.Add(mcp, strings.Join(tt.req.APIKeys, "\x00"), uint8(len(tt.req.APIKeys)), strings.Join(tt.req.Authorizations, "\x00"), uint8(len(tt.req.Authorizations)), tt.req.Path)
	}
	for _, tt := range queryKeyTests {
		f.Add(true, testKey, uint8(1), "Bearer "+testKey, uint8(1), tt.target)
	}
	f.Fuzz(func(t *testing.T, mcp bool, keys string, nKeys uint8, auths string, nAuths uint8, path string) {
		req := authz.Request{Surface: authz.SurfaceAPI, APIKeys: splitValues(keys, nKeys), Authorizations: splitValues(auths, nAuths), Path: path}
		if mcp {
			req.Surface = authz.SurfaceMCP
		}
		c := authz.Extract(req)
		switch c.Code {
		case authz.CodeOK, authz.CodeKeyInQuery, authz.CodeInvalidKeyFormat:
		default:
			t.Fatalf("Extract(%+v).Code = %v; want ok, key_in_query or invalid_key_format", req, c.Code)
		}
		if c.QueryKey != "" && (c.Code != authz.CodeKeyInQuery || !wellFormed.MatchString(string(c.QueryKey))) {
			t.Fatalf("Extract(%+v) = %s; a QueryKey must be well-formed and deny", req, showCredential(c))
		}
		if c.Code != authz.CodeOK {
			if c.Key != "" || c.Header != "" {
				t.Fatalf("Extract(%+v) = %s; a denial must carry no key", req, showCredential(c))
			}
			return
		}
		if queryHasKey(path) {
			t.Fatalf("Extract(%+v) = %s; want key_in_query", req, showCredential(c))
		}
		key := string(c.Key)
		if !wellFormed.MatchString(key) {
			t.Fatalf("Extract(%+v) allowed the malformed key %q", req, key)
		}
		switch c.Header {
		case authz.HeaderAPIKey:
			if len(req.APIKeys) != 1 || strings.Trim(req.APIKeys[0], " \t") != key {
				t.Fatalf("Extract(%+v) = %s; want the one x-api-key value", req, showCredential(c))
			}
		case authz.HeaderAuthorization:
			if req.Surface != authz.SurfaceMCP || len(req.APIKeys) != 0 || len(req.Authorizations) != 1 {
				t.Fatalf("Extract(%+v) = %s; Bearer is for mcp, without x-api-key, one value", req, showCredential(c))
			}
			v := strings.Trim(req.Authorizations[0], " \t")
			if len(v) < 7 || !strings.EqualFold(v[:6], "bearer") || strings.Trim(v[6:], " \t") != key || v[6] != ' ' && v[6] != '\t' {
				t.Fatalf("Extract(%+v) = %s; want the Bearer token", req, showCredential(c))
			}
		default:
			t.Fatalf("Extract(%+v) = %s; unknown header", req, showCredential(c))
		}
	})
}

func FuzzQueryKey(f *testing.F) {
	for _, tt := range queryKeyTests {
		f.Add(tt.target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		key, found := authz.QueryKey(target)
		if want := queryHasKey(target); found != want {
			t.Fatalf("QueryKey(%q) found = %v; want %v", target, found, want)
		}
		if key == "" {
			return
		}
		if !found || !wellFormed.MatchString(string(key)) {
			t.Fatalf("QueryKey(%q) = %q, %v; want a well-formed key only when found", target, string(key), found)
		}
	})
}

var balanceFormat = regexp.MustCompile(`^-?[0-9]{1,30}(\.[0-9]{1,18})?$`)

func FuzzParseBalance(f *testing.F) {
	for _, tt := range balanceTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := authz.ParseBalance(s)
		if want := balanceFormat.MatchString(s); (err == nil) != want {
			t.Fatalf("ParseBalance(%q) error = %v; want accepted = %v", s, err, want)
		}
		if err != nil {
			if b.Positive() {
				t.Fatalf("ParseBalance(%q) = positive with error %v", s, err)
			}
			return
		}
		if got := b.String(); got != s {
			t.Fatalf("ParseBalance(%q).String() = %q; want %q", s, got, s)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat cannot parse the accepted balance %q", s)
		}
		if b.Positive() != (r.Sign() > 0) {
			t.Fatalf("ParseBalance(%q).Positive() = %v; big.Rat sign is %d", s, b.Positive(), r.Sign())
		}
		again, err := authz.ParseBalance(b.String())
		if err != nil || again != b {
			t.Fatalf("ParseBalance(ParseBalance(%q).String()) = %v, %v; want %v", s, again, err, b)
		}
	})
}

func FuzzDecide(f *testing.F) {
	present := uint8(authz.Present)
	for _, code := range authz.Codes {
		for _, state := range []string{"active", "suspended", "revoked", "", "Active"} {
			f.Add(uint8(code), present, state, present, "12.50")
		}
	}
	presences := []authz.Presence{authz.Unreadable, authz.Present, authz.Absent, 9}
	for _, kp := range presences {
		for _, ap := range presences {
			for _, balance := range []string{"12.50", "0.01", "0", "0.00", "-0", "-1.5", "1e5", ""} {
				f.Add(uint8(authz.CodeOK), uint8(kp), "active", uint8(ap), balance)
			}
		}
	}
	f.Fuzz(func(t *testing.T, code, keyPresence uint8, state string, accountPresence uint8, balance string) {
		c := authz.Credential{Code: authz.Code(code)}
		if c.Code == authz.CodeOK {
			c.Key, c.Header = testKey, authz.HeaderAPIKey
		}
		key := authz.KeyEntry{Presence: authz.Presence(keyPresence), Record: authz.KeyRecord{KeyID: "key_1", AccountID: "acct_1", State: authz.KeyState(state)}}
		b, err := authz.ParseBalance(balance)
		account := authz.AccountEntry{Presence: authz.Presence(accountPresence), Account: authz.Account{Balance: b}}
		if err != nil && account.Presence == authz.Present {
			// An account whose balance does not parse is unreadable.
			account.Presence = authz.Unreadable
		}

		got := authz.Decide(c, key, account)

		r, _ := new(big.Rat).SetString(balance)
		allow := c.Code == authz.CodeOK && key.Presence == authz.Present && state == "active" &&
			account.Presence == authz.Present && r != nil && r.Sign() > 0
		if got.Allowed() != allow || (got == authz.CodeOK) != allow || (got.Status() == 200) != allow {
			t.Fatalf("Decide(%v, %+v, %+v) = %v; want allowed = %v", c.Code, key, account, got, allow)
		}
		if c.Code != authz.CodeOK && got != c.Code {
			t.Fatalf("Decide(%v, %+v, %+v) = %v; a denied credential decides", c.Code, key, account, got)
		}
		if !authz.NeedsAccount(key) {
			if other := authz.Decide(c, key, authz.AccountEntry{}); other != got {
				t.Fatalf("Decide with and without the account = %v, %v; NeedsAccount(%+v) = false", got, other, key)
			}
		}
		if c.Code == authz.CodeOK && key.Presence != authz.Present && key.Presence != authz.Absent && got != authz.CodeUnavailable {
			t.Fatalf("Decide(%v, %+v, %+v) = %v; an unreadable key must be authz_unavailable", c.Code, key, account, got)
		}
	})
}

var hashFormat = regexp.MustCompile(`^[0-9a-f]{64}$`)

func FuzzParseKeyHash(f *testing.F) {
	f.Add("e822616849d51343038c0ee860f22efc59e7894ee7dd3c6a88c13e3a42d91418")
	f.Add(strings.Repeat("F", 64))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := authz.ParseKeyHash(s)
		want := hashFormat.MatchString(s)
		if (err == nil) != want {
			t.Fatalf("ParseKeyHash(%q) error = %v; want accepted = %v", s, err, want)
		}
		if err == nil && h.String() != s {
			t.Fatalf("ParseKeyHash(%q).String() = %s", s, h)
		}
	})
}

func FuzzParseAPIKey(f *testing.F) {
	for _, tt := range extractTests {
		for _, v := range tt.req.APIKeys {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := authz.ParseAPIKey(s)
		if want := wellFormed.MatchString(s); (err == nil) != want {
			t.Fatalf("ParseAPIKey(%q) error = %v; want accepted = %v", s, err, want)
		}
		if err == nil && string(k) != s {
			t.Fatalf("ParseAPIKey(%q) = %q", s, string(k))
		}
		if err != nil && err.Error() != authz.ErrKeyFormat.Error() {
			t.Fatalf("ParseAPIKey(%q) error = %q; want the fixed ErrKeyFormat text, which cannot quote a key", s, err)
		}
	})
}
