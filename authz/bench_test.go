package authz_test

import (
	"testing"

	"github.com/footstep/authz/authz"
)

const benchKey = "sk_live_bench_0123456789abcdefABCDEF"

var benchSink authz.Credential

func BenchmarkExtract(b *testing.B) {
	cases := []struct {
		name string
		req  authz.Request
	}{
		{"x-api-key", authz.Request{APIKeys: []string{benchKey}, Path: "/v1/chat/completions"}},
		{"bearer_mcp", authz.Request{Surface: authz.SurfaceMCP, Authorizations: []string{"Bearer " + benchKey}, Path: "/mcp"}},
		{"query_clean", authz.Request{APIKeys: []string{benchKey}, Path: "/v1/items?page=2&sort=desc&limit=50"}},
		{"query_key", authz.Request{APIKeys: []string{benchKey}, Path: "/v1/items?api_key=" + benchKey}},
		{"query_encoded", authz.Request{Path: "/v1/items?k=%2573k_live_abc%26x"}},
		{"malformed", authz.Request{APIKeys: []string{"sk_live_bad key"}, Path: "/"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = authz.Extract(bc.req)
			}
		})
	}
}

func BenchmarkHash(b *testing.B) {
	k := authz.APIKey(benchKey)
	b.ReportAllocs()
	var h authz.KeyHash
	for b.Loop() {
		h = k.Hash()
	}
	_ = h
}

func BenchmarkDecide(b *testing.B) {
	balance, err := authz.ParseBalance("12.50")
	if err != nil {
		b.Fatal(err)
	}
	cred := authz.Credential{Code: authz.CodeOK, Key: benchKey, Header: authz.HeaderAPIKey}
	key := authz.KeyEntry{Revision: 3, Presence: authz.Present, Record: authz.KeyRecord{KeyID: "key_1", AccountID: "acct_1", State: authz.StateActive}}
	acct := authz.AccountEntry{Revision: 2, Presence: authz.Present, Account: authz.Account{Balance: balance}}
	b.ReportAllocs()
	var c authz.Code
	for b.Loop() {
		c = authz.Decide(cred, key, acct)
	}
	if c != authz.CodeOK {
		b.Fatalf("Decide = %v; want ok", c)
	}
}
