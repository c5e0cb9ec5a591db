package events_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/footstep/authz/events"
)

var (
	keySubjectRe     = regexp.MustCompile(`^key\.[0-9a-f]{64}$`)
	accountSubjectRe = regexp.MustCompile(`^account\.[A-Za-z0-9_-]{1,64}$`)
)

// FuzzParseKVKey: a KV key read from the bucket never panics the parser,
// and only the two documented shapes are taken, round-tripping exactly; a
// plaintext key or anything else is KindUnknown.
func FuzzParseKVKey(f *testing.F) {
	for _, s := range []string{
		"key." + strings.Repeat("ab", 32), "key." + strings.Repeat("AB", 32), "key.", "key.sk_live_x",
		"account.acct_9", "account.", "account.a.b", "account.a*", "account." + strings.Repeat("a", 65),
		"accounts.x", "", ".", "revoked." + strings.Repeat("ab", 32), "revoked.", "key." + strings.Repeat("0", 63), "account.\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		k := events.ParseKVKey(name)
		switch k.Kind {
		case events.KindKey:
			if !keySubjectRe.MatchString(name) || events.KeyKVKey(k.Hash) != name {
				t.Fatalf("ParseKVKey(%q) = key %s; not a key subject", name, k.Hash)
			}
		case events.KindTombstone:
			if events.TombstoneKVKey(k.Hash) != name {
				t.Fatalf("ParseKVKey(%q) = tombstone %s; not a tombstone subject", name, k.Hash)
			}
		case events.KindAccount:
			if !accountSubjectRe.MatchString(name) || events.AccountKVKey(k.AccountID) != name {
				t.Fatalf("ParseKVKey(%q) = account %q; not an account subject", name, k.AccountID)
			}
		default:
			if keySubjectRe.MatchString(name) || accountSubjectRe.MatchString(name) {
				t.Fatalf("ParseKVKey(%q) = unknown; want it parsed", name)
			}
		}
	})
}

// FuzzDecodeTombstone: a tombstone value never panics the decoder, and one
// that decodes names a valid key and round-trips.
func FuzzDecodeTombstone(f *testing.F) {
	for _, s := range []string{
		`{"key_id":"k","account_id":"a","revision":3,"at":"2026-01-02T03:04:05Z"}`, `{"key_id":"k","account_id":"a"}`,
		`{}`, `null`, `[]`, `{"key_id":"k","account_id":"a","revision":-1}`, `{"key_id":"k","account_id":"a","at":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := events.DecodeTombstone(data)
		if !decoded(t, "DecodeTombstone", err) {
			return
		}
		b, err := events.EncodeTombstone(ts)
		if err != nil {
			t.Fatalf("EncodeTombstone(%+v): %v", ts, err)
		}
		if again, err := events.DecodeTombstone(b); err != nil || again.KeyID != ts.KeyID || again.Revision != ts.Revision {
			t.Fatalf("round trip of %+v = %+v, %v", ts, again, err)
		}
	})
}
