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
)

// checkStates answers from fixed maps; anything else is absent, and one
// account fails as NATS would.
type checkStates struct {
	keys     map[authz.KeyHash]authz.KeyEntry
	accounts map[string]authz.AccountEntry
}

var errAccountDown = errors.New("nats down")

func (f *checkStates) Key(_ context.Context, h authz.KeyHash) (authz.KeyEntry, error) {
	if e, ok := f.keys[h]; ok {
		return e, nil
	}
	return authz.KeyEntry{Presence: authz.Absent}, nil
}

func (f *checkStates) Account(_ context.Context, id string) (authz.AccountEntry, error) {
	if id == "acct_down" {
		return authz.AccountEntry{}, errAccountDown
	}
	if e, ok := f.accounts[id]; ok {
		return e, nil
	}
	return authz.AccountEntry{Presence: authz.Absent}, nil
}

// Fuzzed keys: only fuzzActive may ever be allowed.
const (
	fuzzActive    = "sk_live_active_funded"
	fuzzBroke     = "sk_live_active_broke"
	fuzzSuspended = "sk_live_suspended"
	fuzzRevoked   = "sk_live_revoked"
	fuzzUnread    = "sk_live_unreadable"
	fuzzDown      = "sk_live_account_down"
)

func newCheckStates() *checkStates {
	rec := func(id, acct string, s authz.KeyState) authz.KeyEntry {
		return authz.KeyEntry{Revision: 1, Presence: authz.Present, Record: authz.KeyRecord{KeyID: id, AccountID: acct, State: s}}
	}
	bal := func(s string) authz.AccountEntry {
		b, err := authz.ParseBalance(s)
		if err != nil {
			panic(err)
		}
		return authz.AccountEntry{Revision: 1, Presence: authz.Present, Account: authz.Account{Balance: b}}
	}
	return &checkStates{
		keys: map[authz.KeyHash]authz.KeyEntry{
			authz.APIKey(fuzzActive).Hash():    rec("k1", "acct_rich", authz.StateActive),
			authz.APIKey(fuzzBroke).Hash():     rec("k2", "acct_broke", authz.StateActive),
			authz.APIKey(fuzzSuspended).Hash(): rec("k3", "acct_rich", authz.StateSuspended),
			authz.APIKey(fuzzRevoked).Hash():   rec("k4", "acct_rich", authz.StateRevoked),
			authz.APIKey(fuzzUnread).Hash():    {Revision: 1, Presence: authz.Unreadable},
			authz.APIKey(fuzzDown).Hash():      rec("k6", "acct_down", authz.StateActive),
		},
		accounts: map[string]authz.AccountEntry{"acct_rich": bal("12.50"), "acct_broke": bal("0")},
	}
}

func newFuzzServer(tb testing.TB) *envoy.Server {
	tb.Helper()
	engine, err := envoy.NewEngine(envoy.EngineConfig{States: newCheckStates()})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := envoy.NewServer(engine, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return srv
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
	srv := newFuzzServer(f)
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
