package authz_test

import (
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

func TestParseExpiry(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-12-31T00:00:00Z", time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), true},
		{"2026-12-31T00:00:00.123456789Z", time.Date(2026, 12, 31, 0, 0, 0, 123456789, time.UTC), true},
		{"2000-01-01T00:00:00Z", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"9999-12-31T23:59:59Z", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"1999-12-31T23:59:59Z", time.Time{}, false},
		{"2026-12-31T00:00:00+01:00", time.Time{}, false},
		{"2026-12-31T00:00:00z", time.Time{}, false},
		{"2026-12-31", time.Time{}, false},
		{"2026-13-01T00:00:00Z", time.Time{}, false},
		{"", time.Time{}, false},
		{"Z", time.Time{}, false},
		{"1767225600", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := authz.ParseExpiry(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, authz.ErrExpiryFormat) {
			t.Errorf("ParseExpiry(%q) error %v; want ErrExpiryFormat", tt.in, err)
		}
		if err == nil && authz.FormatExpiry(got) != tt.in {
			t.Errorf("FormatExpiry(ParseExpiry(%q)) = %q", tt.in, authz.FormatExpiry(got))
		}
	}
}

func TestValidateExpiry(t *testing.T) {
	rec := authz.KeyRecord{KeyID: "key_1", AccountID: "acct_1", State: authz.StateActive}
	if err := rec.Validate(); err != nil {
		t.Fatalf("no expiry: %v", err)
	}
	rec.ExpiresAt = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	if err := rec.Validate(); !errors.Is(err, authz.ErrExpiryFormat) {
		t.Errorf("Validate(1970) = %v; want ErrExpiryFormat", err)
	}
}

func TestDecideAtExpiry(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cred := authz.Extract(authz.Request{APIKeys: []string{"sk_live_expiry_1"}})
	funded := authz.AccountEntry{Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(t, "5")}}
	tests := []struct {
		name  string
		state authz.KeyState
		exp   time.Time
		now   time.Time
		want  authz.Code
	}{
		{"no expiry", authz.StateActive, time.Time{}, at.AddDate(100, 0, 0), authz.CodeOK},
		{"a millisecond before", authz.StateActive, at, at.Add(-time.Millisecond), authz.CodeOK},
		{"at the instant", authz.StateActive, at, at, authz.CodeKeyRevoked},
		{"after", authz.StateActive, at, at.Add(time.Hour), authz.CodeKeyRevoked},
		{"suspended and expired", authz.StateSuspended, at, at, authz.CodeKeyRevoked},
		{"suspended before expiry", authz.StateSuspended, at, at.Add(-time.Second), authz.CodeKeySuspended},
		{"revoked before expiry", authz.StateRevoked, at, at.Add(-time.Second), authz.CodeKeyRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := authz.KeyEntry{Presence: authz.Present, Record: authz.KeyRecord{
				KeyID: "key_1", AccountID: "acct_1", State: tt.state, ExpiresAt: tt.exp,
			}}
			if got := authz.DecideAt(cred, key, funded, tt.now); got != tt.want {
				t.Errorf("DecideAt(%s, expires %v, now %v) = %v; want %v", tt.state, tt.exp, tt.now, got, tt.want)
			}
		})
	}
}

func TestCheckTransitionAtExpiry(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	expiring := authz.KeyRecord{KeyID: "key_1", AccountID: "acct_1", State: authz.StateActive, ExpiresAt: at}
	with := func(f func(*authz.KeyRecord)) *authz.KeyRecord {
		r := expiring
		f(&r)
		return &r
	}
	tests := []struct {
		name string
		next *authz.KeyRecord
		now  time.Time
		want error
	}{
		{"drop expiry before it", with(func(r *authz.KeyRecord) { r.ExpiresAt = time.Time{} }), at.Add(-time.Millisecond), nil},
		{"drop expiry after it", with(func(r *authz.KeyRecord) { r.ExpiresAt = time.Time{} }), at, authz.ErrExpiredTerminal},
		{"move expiry after it", with(func(r *authz.KeyRecord) { r.ExpiresAt = at.Add(time.Hour) }), at.Add(time.Second), authz.ErrExpiredTerminal},
		{"suspend after it", with(func(r *authz.KeyRecord) { r.State = authz.StateSuspended }), at, authz.ErrExpiredTerminal},
		{"same record after it", &expiring, at, authz.ErrExpiredTerminal},
		{"revoke after it", with(func(r *authz.KeyRecord) { r.State = authz.StateRevoked }), at, nil},
		{"delete after it", nil, at, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := authz.CheckTransitionAt(&expiring, tt.next, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("CheckTransitionAt = %v; want %v", err, tt.want)
			}
			if tt.want != nil && !errors.Is(err, authz.ErrRevokedTerminal) {
				t.Errorf("CheckTransitionAt = %v; want it to match ErrRevokedTerminal", err)
			}
		})
	}
}

// FuzzParseExpiry: ParseExpiry never panics, and what it accepts is a UTC
// instant in range that formats back to a value it accepts as the same.
func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"2026-12-31T00:00:00Z", "2026-12-31T00:00:00.5Z", "1999-12-31T23:59:59Z",
		"2026-12-31T00:00:00+01:00", "9999-12-31T23:59:59.999999999Z", "Z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := authz.ParseExpiry(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || authz.CheckExpiry(got) != nil || got.IsZero() {
			t.Fatalf("ParseExpiry(%q) = %v: not a UTC instant in range", s, got)
		}
		again, err := authz.ParseExpiry(authz.FormatExpiry(got))
		if err != nil || !again.Equal(got) {
			t.Fatalf("ParseExpiry(FormatExpiry(%v)) = %v, %v", got, again, err)
		}
	})
}
