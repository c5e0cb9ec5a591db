package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

var keyTests = []struct {
	name string
	in   string
	want authz.KeyRecord
	ok   bool
}{
	{"active", `{"key_id":"key_123","account_id":"acct_9","state":"active"}`, authz.KeyRecord{KeyID: "key_123", AccountID: "acct_9", State: authz.StateActive}, true},
	{"suspended", `{"key_id":"k","account_id":"a","state":"suspended"}`, authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateSuspended}, true},
	{"revoked spaced", " {\"state\" : \"revoked\", \"account_id\":\"a-b\",\"key_id\":\"K_1\"}\n", authz.KeyRecord{KeyID: "K_1", AccountID: "a-b", State: authz.StateRevoked}, true},
	{"unknown field ignored", `{"key_id":"k","account_id":"a","state":"active","note":{"x":[1,2]}}`, authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive}, true},
	{"duplicate state", `{"key_id":"k","account_id":"a","state":"revoked","state":"active"}`, authz.KeyRecord{}, false},
	{"duplicate id", `{"key_id":"k","key_id":"k","account_id":"a","state":"active"}`, authz.KeyRecord{}, false},
	{"missing state", `{"key_id":"k","account_id":"a"}`, authz.KeyRecord{}, false},
	{"unknown state", `{"key_id":"k","account_id":"a","state":"enabled"}`, authz.KeyRecord{}, false},
	{"state case", `{"key_id":"k","account_id":"a","state":"Active"}`, authz.KeyRecord{}, false},
	{"field case", `{"key_id":"k","account_id":"a","State":"active"}`, authz.KeyRecord{}, false},
	{"number id", `{"key_id":123,"account_id":"a","state":"active"}`, authz.KeyRecord{}, false},
	{"null state", `{"key_id":"k","account_id":"a","state":null}`, authz.KeyRecord{}, false},
	{"object state", `{"key_id":"k","account_id":"a","state":{"v":"active"}}`, authz.KeyRecord{}, false},
	{"bad id", `{"key_id":"k y","account_id":"a","state":"active"}`, authz.KeyRecord{}, false},
	{"empty id", `{"key_id":"","account_id":"a","state":"active"}`, authz.KeyRecord{}, false},
	{"long account", `{"key_id":"k","account_id":"` + strings.Repeat("a", 65) + `","state":"active"}`, authz.KeyRecord{}, false},
	{"trailing data", `{"key_id":"k","account_id":"a","state":"active"}{}`, authz.KeyRecord{}, false},
	{"trailing garbage", `{"key_id":"k","account_id":"a","state":"active"}x`, authz.KeyRecord{}, false},
	{"array", `[{"key_id":"k","account_id":"a","state":"active"}]`, authz.KeyRecord{}, false},
	{"empty", ``, authz.KeyRecord{}, false},
	{"truncated", `{"key_id":"k","account_id":"a","state":"active"`, authz.KeyRecord{}, false},
	{"too big", `{"key_id":"k","account_id":"a","state":"active","pad":"` + strings.Repeat("x", 1024) + `"}`, authz.KeyRecord{}, false},
}

func TestDecodeKey(t *testing.T) {
	for _, tt := range keyTests {
		t.Run(tt.name, func(t *testing.T) { checkDecodeKey(t, tt.in, tt.want, tt.ok) })
	}
}

// checkDecodeKey checks that DecodeKey(in) returns want when ok, else an
// ErrBadRecord; it returns the error.
func checkDecodeKey(t *testing.T, in string, want authz.KeyRecord, ok bool) error {
	t.Helper()
	got, err := events.DecodeKey([]byte(in))
	if ok && (err != nil || got != want) {
		t.Fatalf("DecodeKey(%s) = %+v, %v; want %+v", in, got, err, want)
	}
	if !ok && (err == nil || !errors.Is(err, events.ErrBadRecord)) {
		t.Fatalf("DecodeKey(%s) = %+v, %v; want ErrBadRecord", in, got, err)
	}
	return err
}

func TestDecodeKeyExpiry(t *testing.T) {
	at := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	rec := authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive}
	expiring := rec
	expiring.ExpiresAt = at
	tests := []struct {
		name string
		in   string
		want authz.KeyRecord
		ok   bool
	}{
		{"old record", `{"key_id":"k","account_id":"a","state":"active"}`, rec, true},
		{"expires_at", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T00:00:00Z"}`, expiring, true},
		{"expires_at null", `{"key_id":"k","account_id":"a","state":"active","expires_at":null}`, rec, true},
		{"expires_at offset", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T01:00:00+01:00"}`, authz.KeyRecord{}, false},
		{"expires_at empty", `{"key_id":"k","account_id":"a","state":"active","expires_at":""}`, rec, true},
		{"expires_at date", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31"}`, authz.KeyRecord{}, false},
		{"expires_at number", `{"key_id":"k","account_id":"a","state":"active","expires_at":1767139200}`, authz.KeyRecord{}, false},
		{"expires_at 1970", `{"key_id":"k","account_id":"a","state":"active","expires_at":"1970-01-01T00:00:00Z"}`, authz.KeyRecord{}, false},
		{"expires_at twice", `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T00:00:00Z","expires_at":"2099-12-31T00:00:00Z"}`, authz.KeyRecord{}, false},
		{"expires_at with a secret", `{"key_id":"k","account_id":"a","state":"active","expires_at":"sk_live_leakedZ"}`, authz.KeyRecord{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkDecodeKey(t, tt.in, tt.want, tt.ok); err != nil && strings.Contains(err.Error(), "sk_live_") {
				t.Errorf("DecodeKey error quotes the value: %v", err)
			}
		})
	}
}

func TestEncodeKeyExpiry(t *testing.T) {
	rec := authz.KeyRecord{KeyID: "k", AccountID: "a", State: authz.StateActive,
		ExpiresAt: time.Date(2026, 12, 31, 0, 0, 0, 5e8, time.UTC)}
	b, err := events.EncodeKey(rec)
	if want := `{"key_id":"k","account_id":"a","state":"active","expires_at":"2026-12-31T00:00:00.5Z"}`; err != nil || string(b) != want {
		t.Fatalf("EncodeKey = %s, %v; want %s", b, err, want)
	}
	if got, err := events.DecodeKey(b); err != nil || got != rec {
		t.Errorf("DecodeKey(EncodeKey) = %+v, %v; want %+v", got, err, rec)
	}
	rec.ExpiresAt = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := events.EncodeKey(rec); !errors.Is(err, events.ErrBadRecord) {
		t.Errorf("EncodeKey(year 12000) = %v; want ErrBadRecord", err)
	}
}

// decoded reports whether a fuzzed value decoded (err is nil); an error
// must wrap ErrBadRecord.
func decoded(t *testing.T, decoder string, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, events.ErrBadRecord) {
		t.Fatalf("%s error %v does not wrap ErrBadRecord", decoder, err)
	}
	return err == nil
}

var accountTests = []struct {
	name     string
	in       string
	want     string
	positive bool
	ok       bool
}{
	{"positive", `{"balance":"12.50"}`, "12.50", true, true},
	{"zero", `{"balance":"0.00"}`, "0.00", false, true},
	{"negative", `{"balance":"-3"}`, "-3", false, true},
	{"tiny", `{"balance":"0.000001"}`, "0.000001", true, true},
	{"extra field", `{"balance":"1","currency":"EUR"}`, "1", true, true},
	{"number", `{"balance":12.5}`, "", false, false},
	{"duplicate", `{"balance":"0","balance":"100"}`, "", false, false},
	{"bad decimal", `{"balance":"1e3"}`, "", false, false},
	{"empty string", `{"balance":""}`, "", false, false},
	{"missing", `{}`, "", false, false},
	{"null", `null`, "", false, false},
	{"trailing", `{"balance":"1"} 1`, "", false, false},
}

func TestDecodeAccount(t *testing.T) {
	for _, tt := range accountTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.DecodeAccount([]byte(tt.in))
			if tt.ok && (err != nil || got.Balance.String() != tt.want || got.Balance.Positive() != tt.positive) {
				t.Fatalf("DecodeAccount(%s) = %v, %v; want %s (positive %v)", tt.in, got.Balance, err, tt.want, tt.positive)
			}
			if !tt.ok && (err == nil || !errors.Is(err, events.ErrBadRecord)) {
				t.Fatalf("DecodeAccount(%s) = %v, %v; want ErrBadRecord", tt.in, got.Balance, err)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	rec := authz.KeyRecord{KeyID: "key_1", AccountID: "acct_9", State: authz.StateSuspended}
	b, err := events.EncodeKey(rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"key_id":"key_1","account_id":"acct_9","state":"suspended"}`; string(b) != want {
		t.Errorf("EncodeKey = %s; want %s", b, want)
	}
	if got, err := events.DecodeKey(b); err != nil || got != rec {
		t.Errorf("DecodeKey(EncodeKey) = %+v, %v; want %+v", got, err, rec)
	}
	if _, err := events.EncodeKey(authz.KeyRecord{KeyID: "k", AccountID: "a", State: "gone"}); !errors.Is(err, events.ErrBadRecord) {
		t.Errorf("EncodeKey(bad state) = %v; want ErrBadRecord", err)
	}
	bal, _ := authz.ParseBalance("-0.5")
	if b, _ := events.EncodeAccount(authz.Account{Balance: bal}); string(b) != `{"balance":"-0.5"}` {
		t.Errorf("EncodeAccount = %s", b)
	}
}

func TestParseKVKey(t *testing.T) {
	h := hashOf("sk_live_abc")
	tests := []struct {
		in   string
		want events.KVKey
	}{
		{events.KeyKVKey(h), events.KVKey{Kind: events.KindKey, Hash: h}},
		{events.AccountKVKey("acct_9"), events.KVKey{Kind: events.KindAccount, AccountID: "acct_9"}},
		{events.TombstoneKVKey(h), events.KVKey{Kind: events.KindTombstone, Hash: h}},
		{"revoked." + h.String()[:63], events.KVKey{}},
		{"revoked.sk_live_abc", events.KVKey{}},
		{"key." + strings.ToUpper(h.String()), events.KVKey{}},
		{"key." + h.String()[:63], events.KVKey{}},
		{"key." + h.String() + "0", events.KVKey{}},
		{"key.sk_live_abc", events.KVKey{}},
		{"account.", events.KVKey{}},
		{"account.a.b", events.KVKey{}},
		{"other.x", events.KVKey{}},
	}
	for _, tt := range tests {
		if got := events.ParseKVKey(tt.in); got != tt.want {
			t.Errorf("ParseKVKey(%q) = %+v; want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzDecodeKey(f *testing.F) {
	for _, tt := range keyTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := events.DecodeKey(data)
		if !decoded(t, "DecodeKey", err) {
			return
		}
		if err := rec.Validate(); err != nil {
			t.Fatalf("DecodeKey(%q) = %+v, which does not validate: %v", data, rec, err)
		}
		b, err := events.EncodeKey(rec)
		if err != nil {
			t.Fatalf("EncodeKey(%+v): %v", rec, err)
		}
		if again, err := events.DecodeKey(b); err != nil || again != rec {
			t.Fatalf("round trip of %+v = %+v, %v", rec, again, err)
		}
	})
}

func FuzzDecodeAccount(f *testing.F) {
	for _, tt := range accountTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		acct, err := events.DecodeAccount(data)
		if !decoded(t, "DecodeAccount", err) {
			return
		}
		again, err := authz.ParseBalance(acct.Balance.String())
		if err != nil || again.Positive() != acct.Balance.Positive() {
			t.Fatalf("DecodeAccount(%q) balance %v does not parse back: %v", data, acct.Balance, err)
		}
	})
}

func TestTombstoneRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	ts := events.NewTombstone(authz.KeyRecord{KeyID: "key_1", AccountID: "acct_9", State: authz.StateActive}, 42, at)
	b, err := events.EncodeTombstone(ts)
	if err != nil || string(b) != `{"key_id":"key_1","account_id":"acct_9","revision":42,"at":"2026-01-02T03:04:05Z"}` {
		t.Fatalf("EncodeTombstone = %s, %v", b, err)
	}
	if got, err := events.DecodeTombstone(b); err != nil || got != ts {
		t.Errorf("DecodeTombstone(EncodeTombstone) = %+v, %v; want %+v", got, err, ts)
	}
	if rec := ts.Record(); rec.State != authz.StateRevoked || rec.KeyID != "key_1" {
		t.Errorf("Record() = %+v; want key_1 revoked", rec)
	}
	for _, bad := range []string{``, `null`, `{"key_id":"k"}`, `{"key_id":"k","account_id":"a.b"}`,
		`{"key_id":"k","account_id":"a","at":"yesterday"}`, `{"key_id":"k","account_id":"a"} {}`,
		`{"key_id":"` + secret + `","account_id":"a"}`} {
		_, err := events.DecodeTombstone([]byte(bad))
		if !errors.Is(err, events.ErrBadRecord) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("DecodeTombstone(%q) = %v; want ErrBadRecord without the value", bad, err)
		}
	}
}
