package authz

import (
	"net/http"
	"time"
)

// Code names the outcome of an authorization, as it appears in denial bodies
// and metric labels. The zero value is CodeUnavailable, so a Code that was
// never set denies.
type Code uint8

// The outcomes, in the order Decide checks them.
const (
	CodeUnavailable         Code = iota // key state cannot be read: 503
	CodeKeyInQuery                      // key sent in the query string: 401
	CodeInvalidKeyFormat                // no usable credential, or not sk_live_ format: 401
	CodeInvalidAPIKey                   // well-formed but unknown or deleted: 403
	CodeKeyRevoked                      // revoked: 403
	CodeKeySuspended                    // suspended: 403
	CodeInsufficientBalance             // active, balance <= 0 or no balance record: 402
	CodeOK                              // active with a positive balance: 200
)

// Codes lists every Code, for tables, metrics and tests.
var Codes = []Code{
	CodeOK, CodeKeyInQuery, CodeInvalidKeyFormat, CodeInvalidAPIKey, CodeKeyRevoked,
	CodeKeySuspended, CodeInsufficientBalance, CodeUnavailable,
}

type outcome struct {
	name    string
	status  int
	message string
}

var outcomes = [...]outcome{
	CodeUnavailable:         {"authz_unavailable", http.StatusServiceUnavailable, "Authorization temporarily unavailable"},
	CodeKeyInQuery:          {"key_in_query", http.StatusUnauthorized, "API keys must be sent in the x-api-key header, not in the query string"},
	CodeInvalidKeyFormat:    {"invalid_key_format", http.StatusUnauthorized, "Missing or invalid API key format"},
	CodeInvalidAPIKey:       {"invalid_api_key", http.StatusForbidden, "Invalid API key"},
	CodeKeyRevoked:          {"key_revoked", http.StatusForbidden, "API key has been revoked"},
	CodeKeySuspended:        {"key_suspended", http.StatusForbidden, "API key is suspended"},
	CodeInsufficientBalance: {"insufficient_balance", http.StatusPaymentRequired, "Insufficient balance. Please top up your account."},
	CodeOK:                  {"ok", http.StatusOK, ""},
}

func (c Code) outcome() outcome {
	if int(c) < len(outcomes) {
		return outcomes[c]
	}
	return outcomes[CodeUnavailable]
}

// String returns the wire name of the code, such as "key_revoked" or "ok".
func (c Code) String() string { return c.outcome().name }

// Status returns the HTTP status that the code is answered with.
func (c Code) Status() int { return c.outcome().status }

// Message returns the documented message for the code; empty for CodeOK.
func (c Code) Message() string { return c.outcome().message }

// Allowed reports whether the code lets the request through.
func (c Code) Allowed() bool { return c == CodeOK }

// Decide is DecideAt at the current time.
func Decide(c Credential, key KeyEntry, account AccountEntry) Code {
	return DecideAt(c, key, account, time.Now())
}

// DecideAt applies the rules table to a credential and the states looked up
// for it, at instant now. key is the entry for the credential's hash and
// account the entry for the key's account; callers that did not look one up
// pass the zero value, which reads as unreadable and so never allows. It
// checks in the documented order: query string, format, key presence,
// revoked (or expired at now), suspended, balance.
func DecideAt(c Credential, key KeyEntry, account AccountEntry, now time.Time) Code {
	if c.Code != CodeOK {
		return c.Code
	}
	switch key.Presence {
	case Absent:
		return CodeInvalidAPIKey
	case Present:
	default:
		return CodeUnavailable
	}
	if key.Record.ExpiredAt(now) {
		return CodeKeyRevoked
	}
	switch key.Record.State {
	case StateRevoked:
		return CodeKeyRevoked
	case StateSuspended:
		return CodeKeySuspended
	case StateActive:
	default:
		return CodeUnavailable
	}
	switch account.Presence {
	case Absent:
		return CodeInsufficientBalance
	case Present:
	default:
		return CodeUnavailable
	}
	if !account.Account.Balance.Positive() {
		return CodeInsufficientBalance
	}
	return CodeOK
}

// NeedsAccount reports whether Decide needs the account entry to decide for
// this key entry: only an active key's balance matters.
func NeedsAccount(key KeyEntry) bool {
	return key.Presence == Present && key.Record.State == StateActive
}
