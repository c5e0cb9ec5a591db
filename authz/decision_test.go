package authz_test

import (
	"net/http"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// The literal strings of the rules table in DESIGN.md.
func TestCodeOutcomes(t *testing.T) {
	tests := []struct {
		code    authz.Code
		name    string
		status  int
		message string
		allowed bool
	}{
		{authz.CodeKeyInQuery, "key_in_query", http.StatusUnauthorized, "API keys must be sent in the x-api-key header, not in the query string", false},
		{authz.CodeInvalidKeyFormat, "invalid_key_format", http.StatusUnauthorized, "Missing or invalid API key format", false},
		{authz.CodeInvalidAPIKey, "invalid_api_key", http.StatusForbidden, "Invalid API key", false},
		{authz.CodeKeyRevoked, "key_revoked", http.StatusForbidden, "API key has been revoked", false},
		{authz.CodeKeySuspended, "key_suspended", http.StatusForbidden, "API key is suspended", false},
		{authz.CodeInsufficientBalance, "insufficient_balance", http.StatusPaymentRequired, "Insufficient balance. Please top up your account.", false},
		{authz.CodeOK, "ok", http.StatusOK, "", true},
		{authz.CodeUnavailable, "authz_unavailable", http.StatusServiceUnavailable, "Authorization temporarily unavailable", false},
		// A Code outside the table denies as unavailable.
		{authz.Code(200), "authz_unavailable", http.StatusServiceUnavailable, "Authorization temporarily unavailable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.code.String(); got != tt.name {
				t.Errorf("Code(%d).String() = %q; want %q", tt.code, got, tt.name)
			}
			if got := tt.code.Status(); got != tt.status {
				t.Errorf("%v.Status() = %d; want %d", tt.code, got, tt.status)
			}
			if got := tt.code.Message(); got != tt.message {
				t.Errorf("%v.Message() = %q; want %q", tt.code, got, tt.message)
			}
			if got := tt.code.Allowed(); got != tt.allowed {
				t.Errorf("%v.Allowed() = %v; want %v", tt.code, got, tt.allowed)
			}
		})
	}
}

func TestCodesListsEveryCodeOnce(t *testing.T) {
	seen := map[authz.Code]bool{}
	names := map[string]bool{}
	for _, c := range authz.Codes {
		if seen[c] {
			t.Errorf("Codes lists %v twice", c)
		}
		seen[c] = true
		names[c.String()] = true
	}
	if len(seen) != 8 || len(names) != 8 {
		t.Errorf("Codes has %d codes with %d names; want 8 and 8", len(seen), len(names))
	}
	if authz.Code(0) != authz.CodeUnavailable {
		t.Errorf("zero Code = %v; want authz_unavailable", authz.Code(0))
	}
}

func keyEntry(state authz.KeyState) authz.KeyEntry {
	return authz.KeyEntry{
		Revision: 7,
		Presence: authz.Present,
		Record:   authz.KeyRecord{KeyID: "key_123", AccountID: "acct_9", State: state},
	}
}

func accountEntry(tb testing.TB, balance string) authz.AccountEntry {
	tb.Helper()
	return authz.AccountEntry{Revision: 8, Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(tb, balance)}}
}

func TestDecide(t *testing.T) {
	okCred := authz.Credential{Code: authz.CodeOK, Key: "sk_live_abc123def456", Header: authz.HeaderAPIKey}
	active, revoked, suspended := keyEntry(authz.StateActive), keyEntry(authz.StateRevoked), keyEntry(authz.StateSuspended)
	rich := accountEntry(t, "12.50")
	absentKey := authz.KeyEntry{Presence: authz.Absent}
	absentAccount := authz.AccountEntry{Presence: authz.Absent}
	unreadableAccount := authz.AccountEntry{Presence: authz.Unreadable}

	tests := []struct {
		name    string
		cred    authz.Credential
		key     authz.KeyEntry
		account authz.AccountEntry
		want    authz.Code
	}{
		{"active with balance", okCred, active, rich, authz.CodeOK},
		{"query beats an allowed key", authz.Credential{Code: authz.CodeKeyInQuery, QueryKey: "sk_live_abc123def456"}, active, rich, authz.CodeKeyInQuery},
		{"query beats unreadable state", authz.Credential{Code: authz.CodeKeyInQuery}, authz.KeyEntry{}, authz.AccountEntry{}, authz.CodeKeyInQuery},
		{"format beats an allowed key", authz.Credential{Code: authz.CodeInvalidKeyFormat}, active, rich, authz.CodeInvalidKeyFormat},
		{"format beats lookup", authz.Credential{Code: authz.CodeInvalidKeyFormat}, authz.KeyEntry{}, authz.AccountEntry{}, authz.CodeInvalidKeyFormat},
		{"zero credential never allows", authz.Credential{}, active, rich, authz.CodeUnavailable},
		{"unknown key", okCred, absentKey, rich, authz.CodeInvalidAPIKey},
		{"unknown key, no account looked up", okCred, absentKey, authz.AccountEntry{}, authz.CodeInvalidAPIKey},
		{"unreadable key", okCred, authz.KeyEntry{Presence: authz.Unreadable}, rich, authz.CodeUnavailable},
		{"zero key entry", okCred, authz.KeyEntry{}, rich, authz.CodeUnavailable},
		{"key presence out of range", okCred, authz.KeyEntry{Presence: 9, Record: active.Record}, rich, authz.CodeUnavailable},
		{"revoked beats balance", okCred, revoked, rich, authz.CodeKeyRevoked},
		{"revoked, account unreadable", okCred, revoked, unreadableAccount, authz.CodeKeyRevoked},
		{"revoked, account absent", okCred, revoked, absentAccount, authz.CodeKeyRevoked},
		{"suspended beats balance", okCred, suspended, rich, authz.CodeKeySuspended},
		{"suspended, zero balance", okCred, suspended, accountEntry(t, "0"), authz.CodeKeySuspended},
		{"suspended, account unreadable", okCred, suspended, unreadableAccount, authz.CodeKeySuspended},
		{"empty state is unreadable", okCred, keyEntry(""), rich, authz.CodeUnavailable},
		{"unknown state is unreadable", okCred, keyEntry("Active"), rich, authz.CodeUnavailable},
		{"deleted state is unreadable", okCred, keyEntry("deleted"), rich, authz.CodeUnavailable},
		{"active, account absent", okCred, active, absentAccount, authz.CodeInsufficientBalance},
		{"active, account unreadable", okCred, active, unreadableAccount, authz.CodeUnavailable},
		{"active, zero account entry", okCred, active, authz.AccountEntry{}, authz.CodeUnavailable},
		{"active, account presence out of range", okCred, active, authz.AccountEntry{Presence: 9, Account: rich.Account}, authz.CodeUnavailable},
		{"active, zero Balance", okCred, active, authz.AccountEntry{Presence: authz.Present}, authz.CodeInsufficientBalance},
		{"balance 0", okCred, active, accountEntry(t, "0"), authz.CodeInsufficientBalance},
		{"balance 0.00", okCred, active, accountEntry(t, "0.00"), authz.CodeInsufficientBalance},
		{"balance -0", okCred, active, accountEntry(t, "-0"), authz.CodeInsufficientBalance},
		{"balance -0.0", okCred, active, accountEntry(t, "-0.0"), authz.CodeInsufficientBalance},
		{"balance -1.5", okCred, active, accountEntry(t, "-1.5"), authz.CodeInsufficientBalance},
		{"balance -0.000001", okCred, active, accountEntry(t, "-0.000001"), authz.CodeInsufficientBalance},
		{"balance 0.01", okCred, active, accountEntry(t, "0.01"), authz.CodeOK},
		{"balance 0.000000000000000001", okCred, active, accountEntry(t, "0.000000000000000001"), authz.CodeOK},
		{"balance 1", okCred, active, accountEntry(t, "1"), authz.CodeOK},
		{"bearer credential", authz.Credential{Code: authz.CodeOK, Key: "sk_live_x", Header: authz.HeaderAuthorization}, active, rich, authz.CodeOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authz.Decide(tt.cred, tt.key, tt.account); got != tt.want {
				t.Errorf("Decide(%v, %+v, %+v) = %v; want %v", tt.cred.Code, tt.key, tt.account, got, tt.want)
			}
		})
	}
}

func TestNeedsAccount(t *testing.T) {
	tests := []struct {
		name string
		key  authz.KeyEntry
		want bool
	}{
		{"active", keyEntry(authz.StateActive), true},
		{"suspended", keyEntry(authz.StateSuspended), false},
		{"revoked", keyEntry(authz.StateRevoked), false},
		{"absent", authz.KeyEntry{Presence: authz.Absent}, false},
		{"unreadable", authz.KeyEntry{}, false},
		{"unreadable with active record", authz.KeyEntry{Presence: authz.Unreadable, Record: keyEntry(authz.StateActive).Record}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authz.NeedsAccount(tt.key); got != tt.want {
				t.Errorf("NeedsAccount(%+v) = %v; want %v", tt.key, got, tt.want)
			}
		})
	}
}

// TestExtractThenDecide runs whole requests through the rules, in the order
// the table gives them.
func TestExtractThenDecide(t *testing.T) {
	const key = "sk_live_abc123def456"
	active := keyEntry(authz.StateActive)
	rich := accountEntry(t, "12.50")
	tests := []struct {
		name    string
		req     authz.Request
		key     authz.KeyEntry
		account authz.AccountEntry
		want    authz.Code
	}{
		{"header, active, balance", authz.Request{APIKeys: []string{key}, Path: "/v1/search?q=shoes"}, active, rich, authz.CodeOK},
		{"query beats a valid header", authz.Request{APIKeys: []string{key}, Path: "/v1/search?api_key=" + key}, active, rich, authz.CodeKeyInQuery},
		{"query beats a valid bearer", authz.Request{Surface: authz.SurfaceMCP, Authorizations: []string{"Bearer " + key}, Path: "/mcp?key=" + key}, active, rich, authz.CodeKeyInQuery},
		{"query beats a missing header", authz.Request{Path: "/v1?k=sk_live_zzz"}, authz.KeyEntry{}, authz.AccountEntry{}, authz.CodeKeyInQuery},
		{"format beats lookup", authz.Request{APIKeys: []string{"sk_test_abc"}}, authz.KeyEntry{}, authz.AccountEntry{}, authz.CodeInvalidKeyFormat},
		{"missing header", authz.Request{Path: "/v1"}, active, rich, authz.CodeInvalidKeyFormat},
		{"bearer ignored on api", authz.Request{Authorizations: []string{"Bearer " + key}}, active, rich, authz.CodeInvalidKeyFormat},
		{"bearer on mcp", authz.Request{Surface: authz.SurfaceMCP, Authorizations: []string{"Bearer " + key}}, active, rich, authz.CodeOK},
		{"unreadable key", authz.Request{APIKeys: []string{key}}, authz.KeyEntry{}, rich, authz.CodeUnavailable},
		{"active, no balance record", authz.Request{APIKeys: []string{key}}, active, authz.AccountEntry{Presence: authz.Absent}, authz.CodeInsufficientBalance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := authz.Extract(tt.req)
			if got := authz.Decide(c, tt.key, tt.account); got != tt.want {
				t.Errorf("Decide(Extract(%+v)) = %v; want %v", tt.req, got, tt.want)
			}
		})
	}
}
