package authz_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

func TestKeyStateValid(t *testing.T) {
	tests := []struct {
		state authz.KeyState
		want  bool
	}{
		{authz.StateActive, true},
		{authz.StateSuspended, true},
		{authz.StateRevoked, true},
		{"", false},
		{"Active", false},
		{"ACTIVE", false},
		{"deleted", false},
		{" active", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			if got := tt.state.Valid(); got != tt.want {
				t.Errorf("KeyState(%q).Valid() = %v; want %v", tt.state, got, tt.want)
			}
		})
	}
	if authz.StateActive != "active" || authz.StateSuspended != "suspended" || authz.StateRevoked != "revoked" {
		t.Errorf("states = %q, %q, %q; want active, suspended, revoked", authz.StateActive, authz.StateSuspended, authz.StateRevoked)
	}
}

func TestKeyRecordValidate(t *testing.T) {
	valid := authz.KeyRecord{KeyID: "key_123", AccountID: "acct_9", State: authz.StateActive}
	with := func(f func(*authz.KeyRecord)) authz.KeyRecord {
		r := valid
		f(&r)
		return r
	}
	tests := []struct {
		name    string
		rec     authz.KeyRecord
		wantErr string // substring of the error; empty for none
	}{
		{"valid active", valid, ""},
		{"valid suspended", with(func(r *authz.KeyRecord) { r.State = authz.StateSuspended }), ""},
		{"valid revoked", with(func(r *authz.KeyRecord) { r.State = authz.StateRevoked }), ""},
		{"64-character ids", with(func(r *authz.KeyRecord) { r.KeyID, r.AccountID = strings.Repeat("k", 64), strings.Repeat("a", 64) }), ""},
		{"empty key_id", with(func(r *authz.KeyRecord) { r.KeyID = "" }), "key_id"},
		{"65-character key_id", with(func(r *authz.KeyRecord) { r.KeyID = strings.Repeat("k", 65) }), "key_id"},
		{"key_id with space", with(func(r *authz.KeyRecord) { r.KeyID = "key 1" }), "key_id"},
		{"empty account_id", with(func(r *authz.KeyRecord) { r.AccountID = "" }), "account_id"},
		{"account_id with dot", with(func(r *authz.KeyRecord) { r.AccountID = "acct.9" }), "account_id"},
		{"65-character account_id", with(func(r *authz.KeyRecord) { r.AccountID = strings.Repeat("a", 65) }), "account_id"},
		{"empty state", with(func(r *authz.KeyRecord) { r.State = "" }), "state"},
		{"unknown state", with(func(r *authz.KeyRecord) { r.State = "deleted" }), "state"},
		{"capitalised state", with(func(r *authz.KeyRecord) { r.State = "Active" }), "state"},
		{"key_id checked first", authz.KeyRecord{}, "key_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rec.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%+v.Validate() = %v; want nil", tt.rec, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%+v.Validate() = %v; want an error about %s", tt.rec, err, tt.wantErr)
			}
		})
	}
}

// Untrusted text quoted in a Validate error is clipped.
func TestKeyRecordValidateClips(t *testing.T) {
	long := strings.Repeat("x", 10_000) + "!"
	err := authz.KeyRecord{KeyID: long, AccountID: "a", State: authz.StateActive}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want an error about key_id")
	}
	if len(err.Error()) > 200 {
		t.Errorf("Validate() error is %d bytes; want a clipped error", len(err.Error()))
	}
}

func TestCheckTransition(t *testing.T) {
	rec := func(s authz.KeyState) *authz.KeyRecord {
		return &authz.KeyRecord{KeyID: "key_123", AccountID: "acct_9", State: s}
	}
	tests := []struct {
		name       string
		prev, next *authz.KeyRecord
		wantErr    error
	}{
		{"put new active", nil, rec(authz.StateActive), nil},
		{"put new suspended", nil, rec(authz.StateSuspended), nil},
		{"put new revoked", nil, rec(authz.StateRevoked), nil},
		{"delete missing", nil, nil, nil},
		{"suspend", rec(authz.StateActive), rec(authz.StateSuspended), nil},
		{"reactivate suspended", rec(authz.StateSuspended), rec(authz.StateActive), nil},
		{"revoke active", rec(authz.StateActive), rec(authz.StateRevoked), nil},
		{"revoke suspended", rec(authz.StateSuspended), rec(authz.StateRevoked), nil},
		{"re-put active", rec(authz.StateActive), rec(authz.StateActive), nil},
		{"delete active", rec(authz.StateActive), nil, nil},
		{"delete suspended", rec(authz.StateSuspended), nil, nil},
		{"delete revoked", rec(authz.StateRevoked), nil, nil},
		{"reactivate revoked", rec(authz.StateRevoked), rec(authz.StateActive), authz.ErrRevokedTerminal},
		{"suspend revoked", rec(authz.StateRevoked), rec(authz.StateSuspended), authz.ErrRevokedTerminal},
		{"re-put revoked", rec(authz.StateRevoked), rec(authz.StateRevoked), authz.ErrRevokedTerminal},
		{"move revoked to another account", rec(authz.StateRevoked), &authz.KeyRecord{KeyID: "key_123", AccountID: "acct_other", State: authz.StateRevoked}, authz.ErrRevokedTerminal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := authz.CheckTransition(tt.prev, tt.next); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("CheckTransition(%+v, %+v) = %v; want %v", tt.prev, tt.next, err, tt.wantErr)
			}
		})
	}
}

func TestPresence(t *testing.T) {
	tests := []struct {
		p    authz.Presence
		want string
	}{
		{authz.Unreadable, "unreadable"},
		{authz.Present, "present"},
		{authz.Absent, "absent"},
		{authz.Presence(9), "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("Presence(%d).String() = %q; want %q", tt.p, got, tt.want)
			}
		})
	}
	var zero authz.Presence
	if zero != authz.Unreadable {
		t.Errorf("zero Presence = %v; want unreadable", zero)
	}
}
