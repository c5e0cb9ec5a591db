package envoy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

var errAccountDown = errors.New("nats down")

// Fuzzed keys: only fuzzActive may ever be allowed.
const (
	fuzzActive    = "sk_live_active_funded"
	fuzzBroke     = "sk_live_active_broke"
	fuzzSuspended = "sk_live_suspended"
	fuzzRevoked   = "sk_live_revoked"
	fuzzUnread    = "sk_live_unreadable"
	fuzzDown      = "sk_live_account_down"
)

// newCheckStates holds a key in each state (fuzzUnread unreadable) and two
// accounts; anything else is absent, and acct_down fails as NATS would.
func newCheckStates(tb testing.TB) *testkit.States {
	tb.Helper()
	s := testkit.NewStates()
	putKey(s, fuzzActive, "k1", "acct_rich", authz.StateActive)
	putKey(s, fuzzBroke, "k2", "acct_broke", authz.StateActive)
	putKey(s, fuzzSuspended, "k3", "acct_rich", authz.StateSuspended)
	putKey(s, fuzzRevoked, "k4", "acct_rich", authz.StateRevoked)
	s.PutKey(authz.APIKey(fuzzUnread).Hash(), authz.KeyEntry{Revision: 1, Presence: authz.Unreadable})
	putKey(s, fuzzDown, "k6", "acct_down", authz.StateActive)
	putBalance(tb, s, "acct_rich", "12.50")
	putBalance(tb, s, "acct_broke", "0")
	s.FailAccount("acct_down", errAccountDown)
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

// fuzzSeeds are CheckRequests from the rules table: every outcome, both
// surfaces, both header encodings.
func fuzzSeeds() []*authv3.CheckRequest {
	var seeds []*authv3.CheckRequest
	for _, key := range []string{fuzzActive, fuzzBroke, fuzzSuspended, fuzzRevoked, fuzzUnread, fuzzDown, "sk_live_unknown", "nope", ""} {
		seeds = append(seeds,
			request("api", "/v1/x", map[string]string{"x-api-key": key}),
			request("mcp", "/mcp", map[string]string{"authorization": "Bearer " + key}),
			request("", "/v1/x?key="+key, map[string]string{"x-api-key": fuzzActive}),
			rawRequest("mcp", "/v1/x", [][2]string{{"x-api-key", key}, {"x-api-key", fuzzActive}}),
		)
	}
	seeds = append(seeds,
		request("api", "/v1/x", map[string]string{"x-api-key": fuzzActive, "X-Footstep-Key-Id": "k9", "x-footstep-authz-shadow": "ok"}),
		rawRequest("api", "/v1/x", [][2]string{{"x-api-key", fuzzActive}, {"x-FOOTSTEP-a", "1"}, {"x-footstep-a", "2"}}),
	)
	return append(seeds, &authv3.CheckRequest{}, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}})
}

// FuzzCheck sends arbitrary bytes, read as a CheckRequest, to Check: it never
// panics, never errs, always sets a status, and allows only when the
// credential the rules would take is the active key with a positive balance.
func FuzzCheck(f *testing.F) {
	for _, req := range fuzzSeeds() {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	srv := newServer(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			t.Skip()
		}
		resp, err := srv.Check(context.Background(), &req)
		if err != nil || resp.GetStatus() == nil {
			t.Fatalf("Check = %v, %v; want a response with a status", resp, err)
		}
		if resp.GetStatus().GetCode() != 0 {
			if resp.GetDeniedResponse().GetStatus() == nil || resp.GetDeniedResponse().GetBody() == "" {
				t.Fatalf("denial without an HTTP status or body: %v", resp)
			}
			return
		}
		if key := credentialOf(&req); key != fuzzActive {
			t.Fatalf("allowed with credential %q; only %q may pass", key, fuzzActive)
		}
		ok := resp.GetOkResponse()
		for name := range upstream(t, clientHeaders(&req), ok) {
			if strings.HasPrefix(name, envoy.HeaderPrefix) && !setsHeader(ok, name) {
				t.Fatalf("client's %s reaches the upstream", name)
			}
		}
	})
}

// credentialOf is the oracle: the one key the request carries, taken as
// DESIGN.md says, or "" when the rules deny before any lookup.
func credentialOf(req *authv3.CheckRequest) string {
	http := req.GetAttributes().GetRequest().GetHttp()
	surface, _ := authz.ParseSurface(req.GetAttributes().GetContextExtensions()["surface"])
	r := authz.Request{Surface: surface, Path: http.GetPath()}
	if http.GetQuery() != "" && !containsQ(r.Path) {
		r.Path += "?" + http.GetQuery()
	}
	if hm := http.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		for _, h := range hm {
			v := h.GetValue()
			if len(h.GetRawValue()) > 0 {
				v = string(h.GetRawValue())
			}
			switch h.GetKey() {
			case "x-api-key":
				r.APIKeys = append(r.APIKeys, v)
			case "authorization":
				r.Authorizations = append(r.Authorizations, v)
			}
		}
	} else {
		if v, ok := http.GetHeaders()["x-api-key"]; ok {
			r.APIKeys = []string{v}
		}
		if v, ok := http.GetHeaders()["authorization"]; ok {
			r.Authorizations = []string{v}
		}
	}
	c := authz.Extract(r)
	if c.Code != authz.CodeOK {
		return ""
	}
	return string(c.Key)
}

func containsQ(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			return true
		}
	}
	return false
}

// setsHeader reports whether an allowed answer sets the header name.
func setsHeader(ok *authv3.OkHttpResponse, name string) bool {
	for _, h := range ok.GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return true
		}
	}
	return false
}
