package authz_test

import (
	"fmt"

	"github.com/footstep/authz/authz"
)

func Example() {
	req := authz.Request{
		Surface: authz.SurfaceAPI,
		APIKeys: []string{"sk_live_abc123def456"},
		Path:    "/v1/search?q=shoes",
	}
	c := authz.Extract(req)
	fmt.Println(c.Code, c.Header, c.Key) // the key prints redacted
	fmt.Println(c.Key.Hash())

	// The caller looks up the key by hash and then its account.
	key := authz.KeyEntry{Presence: authz.Present, Record: authz.KeyRecord{KeyID: "key_123", AccountID: "acct_9", State: authz.StateActive}}
	balance, _ := authz.ParseBalance("0.00")
	account := authz.AccountEntry{Presence: authz.Present, Account: authz.Account{Balance: balance}}
	code := authz.Decide(c, key, account)
	fmt.Println(code.Status(), code, code.Message())
	// Output:
	// ok x-api-key sk_live_[REDACTED]
	// e822616849d51343038c0ee860f22efc59e7894ee7dd3c6a88c13e3a42d91418
	// 402 insufficient_balance Insufficient balance. Please top up your account.
}

func ExampleQueryKey() {
	key, found := authz.QueryKey("/v1/search?q=shoes&api_key=sk%5Flive%5Fabc123")
	fmt.Println(found, key.Hash())
	fmt.Println(authz.CodeKeyInQuery.Status(), authz.CodeKeyInQuery.Message())
	// Output:
	// true e9982364fd73c3ea5cfbc3c032589e2b8d332cd405e37d6ed3277972c1743f11
	// 401 API keys must be sent in the x-api-key header, not in the query string
}
