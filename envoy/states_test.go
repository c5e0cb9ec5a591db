package envoy_test

import (
	"errors"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// Keys of the fake states, one per state: only keyActive may ever be allowed.
const (
	keyActive      = "sk_live_active_funded"
	keyBroke       = "sk_live_active_broke"
	keySuspended   = "sk_live_suspended"
	keyRevoked     = "sk_live_revoked"
	keyUnreadable  = "sk_live_unreadable"   // its record cannot be decoded
	keyReadFails   = "sk_live_read_fails"   // reading its record fails
	keyAccountDown = "sk_live_account_down" // its account cannot be read
	keyUnknown     = "sk_live_unknown"
)

// newStates holds a key in each state (keyUnreadable unreadable, keyReadFails
// failing to read) and two accounts; anything else is absent, and acct_down
// fails as NATS would.
func newStates(tb testing.TB) *testkit.States {
	tb.Helper()
	s := testkit.NewStates()
	putKey(s, keyActive, "k1", "acct_rich", authz.StateActive)
	putKey(s, keyBroke, "k2", "acct_broke", authz.StateActive)
	putKey(s, keySuspended, "k3", "acct_rich", authz.StateSuspended)
	putKey(s, keyRevoked, "k4", "acct_rich", authz.StateRevoked)
	s.PutKey(authz.APIKey(keyUnreadable).Hash(), authz.KeyEntry{Revision: 1, Presence: authz.Unreadable})
	s.FailKey(authz.APIKey(keyReadFails).Hash(), errors.New("fake: unreadable"))
	putKey(s, keyAccountDown, "k6", "acct_down", authz.StateActive)
	putBalance(tb, s, "acct_rich", "12.50")
	putBalance(tb, s, "acct_broke", "0")
	s.FailAccount("acct_down", errors.New("fake: nats down"))
	return s
}

// putKey puts key's record, with id and account, at revision 1.
func putKey(s *testkit.States, key, id, account string, state authz.KeyState) {
	s.PutKey(authz.APIKey(key).Hash(), authz.KeyEntry{Revision: 1, Presence: authz.Present,
		Record: authz.KeyRecord{KeyID: id, AccountID: account, State: state}})
}

// putBalance puts account id with balance at revision 1.
func putBalance(tb testing.TB, s *testkit.States, id, balance string) {
	tb.Helper()
	s.PutAccount(id, authz.AccountEntry{Revision: 1, Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(tb, balance)}})
}
