//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// The demo keys that footstep-authz --demo seeds, and the identity of the active one.
const (
	demoActive    = "sk_live_demo_active_0001"
	demoBroke     = "sk_live_demo_broke_0002"
	demoSuspended = "sk_live_demo_suspended_0003"
	demoRevoked   = "sk_live_demo_revoked_0004"
	demoUnknown   = "sk_live_demo_unknown_0005"
	demoAccount   = "acct_demo"
	demoKeyID     = "key_demo_active"
)

// garbledKey has a record that does not parse: footstep-authz answers 503.
const garbledKey = "sk_live_e2e_garbled_0006"

// proxy starts one proxy in front of footstep-authz and the upstream.
type proxy struct {
	name  string
	start func(testing.TB, addrs)
	// downStatus is what a client gets when footstep-authz cannot be reached.
	downStatus int
	// downBody is the JSON body then, when the proxy renders one.
	downBody string
}

var proxies = []proxy{
	{"nginx", startNginx, 503, body(authz.CodeUnavailable)},
	// Caddy answers a failed forward_auth with its own 502 and no body.
	{"caddy", startCaddy, 502, ""},
}

// TestProxies sends every documented decision through each proxy.
func TestProxies(t *testing.T) {
	a := startAuthz(t)
	garble(t, a)
	up, _ := startUpstream(t)
	upstream := strings.TrimPrefix(up.URL, "http://")
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			addr := addrs{proxy: testkit.FreeAddr(t), authz: a.httpAddr, upstream: upstream}
			p.start(t, addr)
			base := "http://" + addr.proxy
			t.Run("decisions", func(t *testing.T) { testDecisions(t, base) })
			t.Run("identity", func(t *testing.T) { testIdentity(t, base) })
			t.Run("mcp", func(t *testing.T) { testMCP(t, base) })
			t.Run("revocation", func(t *testing.T) { testRevocation(t, base, a, p.name) })
			t.Run("authz down", func(t *testing.T) { testAuthzDown(t, p, upstream) })
		})
	}
}

// garble writes a record that does not parse for garbledKey, around the
// Publisher, which would refuse it.
func garble(tb testing.TB, a *authzServer) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.kv.Put(ctx, events.KeyKVKey(authz.APIKey(garbledKey).Hash()), []byte("{not json")); err != nil {
		tb.Fatal(err)
	}
}

func testDecisions(t *testing.T, base string) {
	tests := []struct {
		name    string
		method  string
		target  string
		headers []string
		code    authz.Code
	}{
		{"active", "GET", "/v1/things?page=2", []string{"X-Api-Key", demoActive}, authz.CodeOK},
		{"active, POST with a body", "POST", "/v1/things", []string{"X-Api-Key", demoActive, "Content-Type", "application/json"}, authz.CodeOK},
		{"no credential", "GET", "/v1/things", nil, authz.CodeInvalidKeyFormat},
		{"malformed key", "GET", "/v1/things", []string{"X-Api-Key", "sk_test_123"}, authz.CodeInvalidKeyFormat},
		{"two x-api-key lines", "GET", "/v1/things", []string{"X-Api-Key", demoActive, "X-Api-Key", demoActive}, authz.CodeInvalidKeyFormat},
		{"bearer on the api surface", "GET", "/v1/things", []string{"Authorization", "Bearer " + demoActive}, authz.CodeInvalidKeyFormat},
		{"client claims the mcp surface", "GET", "/v1/things", []string{"Authorization", "Bearer " + demoActive, "X-Footstep-Surface", "mcp"}, authz.CodeInvalidKeyFormat},
		{"key in query", "GET", "/v1/things?api_key=" + demoActive, []string{"X-Api-Key", demoActive}, authz.CodeKeyInQuery},
		{"encoded key in query", "GET", "/v1/things?x=sk%5Flive%5Fdemo", []string{"X-Api-Key", demoActive}, authz.CodeKeyInQuery},
		{"client hides the query", "GET", "/v1/things?k=" + demoActive, []string{"X-Api-Key", demoActive, "X-Forwarded-Uri", "/v1/things", "X-Original-Uri", "/v1/things"}, authz.CodeKeyInQuery},
		{"unknown", "GET", "/v1/things", []string{"X-Api-Key", demoUnknown}, authz.CodeInvalidAPIKey},
		{"revoked", "GET", "/v1/things", []string{"X-Api-Key", demoRevoked}, authz.CodeKeyRevoked},
		{"suspended", "DELETE", "/v1/things/1", []string{"X-Api-Key", demoSuspended}, authz.CodeKeySuspended},
		{"no balance", "GET", "/v1/things", []string{"X-Api-Key", demoBroke}, authz.CodeInsufficientBalance},
		{"unreadable record", "GET", "/v1/things", []string{"X-Api-Key", garbledKey}, authz.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, tt.method, base+tt.target, tt.headers...)
			if tt.code == authz.CodeOK {
				e := checkUpstream(t, got, demoAccount, demoKeyID, "X-Api-Key")
				if e.Method != tt.method || e.URI != tt.target {
					t.Errorf("upstream got %s %s; want %s %s", e.Method, e.URI, tt.method, tt.target)
				}
				return
			}
			checkDenied(t, got, tt.code)
		})
	}
}

// testIdentity: identity headers a client sends never reach the upstream.
func testIdentity(t *testing.T, base string) {
	got := send(t, "GET", base+"/v1/me", "X-Api-Key", demoActive,
		"X-Footstep-Account-Id", "acct_forged", "X-Footstep-Key-Id", "key_forged", "X-Footstep-Account-Id", "acct_forged2")
	checkUpstream(t, got, demoAccount, demoKeyID, "X-Api-Key")
}

func testMCP(t *testing.T, base string) {
	t.Run("bearer", func(t *testing.T) {
		got := send(t, "POST", base+"/mcp/messages", "Authorization", "Bearer "+demoActive, "X-Footstep-Account-Id", "acct_forged")
		checkUpstream(t, got, demoAccount, demoKeyID, "X-Api-Key", "Authorization")
	})
	t.Run("x-api-key", func(t *testing.T) {
		got := send(t, "GET", base+"/mcp", "X-Api-Key", demoActive, "Authorization", "Bearer whatever")
		checkUpstream(t, got, demoAccount, demoKeyID, "X-Api-Key", "Authorization")
	})
	t.Run("no credential asks for a bearer token", func(t *testing.T) {
		got := send(t, "GET", base+"/mcp/messages")
		checkDenied(t, got, authz.CodeInvalidKeyFormat)
		if wa := got.header.Values("Www-Authenticate"); len(wa) != 1 || wa[0] != "Bearer" {
			t.Errorf("www-authenticate %q; want exactly one Bearer", wa)
		}
	})
	t.Run("/mcpx is the api surface", func(t *testing.T) {
		checkDenied(t, send(t, "GET", base+"/mcpx", "Authorization", "Bearer "+demoActive), authz.CodeInvalidKeyFormat)
	})
	t.Run("revoked bearer", func(t *testing.T) {
		checkDenied(t, send(t, "GET", base+"/mcp/messages", "Authorization", "Bearer "+demoRevoked), authz.CodeKeyRevoked)
	})
	t.Run("no balance", func(t *testing.T) {
		checkDenied(t, send(t, "GET", base+"/mcp/messages", "Authorization", "bearer "+demoBroke), authz.CodeInsufficientBalance)
	})
}

// testRevocation: a key revoked while the proxy runs is denied within moments.
func testRevocation(t *testing.T, base string, a *authzServer, name string) {
	key := authz.APIKey("sk_live_e2e_revoke_" + name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := authz.KeyRecord{KeyID: "key_e2e_" + name, AccountID: demoAccount, State: authz.StateActive}
	if _, err := a.publisher.PutKey(ctx, key.Hash(), rec); err != nil {
		t.Fatal(err)
	}
	var got answer
	testkit.Eventually(t, 15*time.Second, "the new key is allowed", func() bool {
		got = send(t, "GET", base+"/v1/things", "X-Api-Key", string(key))
		return got.status == http.StatusOK
	})
	checkUpstream(t, got, demoAccount, rec.KeyID, "X-Api-Key")
	if _, err := a.publisher.Revoke(ctx, key.Hash()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testkit.Eventually(t, 15*time.Second, "the revoked key is denied", func() bool {
		got = send(t, "GET", base+"/v1/things", "X-Api-Key", string(key))
		return got.status != http.StatusOK
	})
	checkDenied(t, got, authz.CodeKeyRevoked)
	t.Logf("%s: revocation took effect after %v", name, time.Since(start).Round(time.Millisecond))
}

// testAuthzDown starts a second instance of the proxy whose footstep-authz does
// not answer: the request fails closed and never reaches the upstream.
func testAuthzDown(t *testing.T, p proxy, upstream string) {
	up, count := startUpstream(t)
	addr := addrs{proxy: testkit.FreeAddr(t), authz: testkit.FreeAddr(t), upstream: strings.TrimPrefix(up.URL, "http://")}
	p.start(t, addr)
	got := send(t, "GET", "http://"+addr.proxy+"/v1/things", "X-Api-Key", demoActive)
	if got.status != p.downStatus || count.get() != 0 {
		t.Fatalf("%s = %d %q, upstream reached %d times; want %d and never", got.request, got.status, got.body, count.get(), p.downStatus)
	}
	if p.downBody != "" {
		checkDenied(t, got, authz.CodeUnavailable)
	}
}

// answer is what a client got.
type answer struct {
	status  int
	header  http.Header
	body    string
	request string // what was sent, for failure messages
}

var client = &http.Client{Timeout: 5 * time.Second}

// send sends a request with headers (name, value pairs; a name may repeat).
func send(tb testing.TB, method, url string, headers ...string) answer {
	tb.Helper()
	var reqBody io.Reader
	if method == "POST" {
		reqBody = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	}
	req, err := http.NewRequest(method, url, reqBody)
	if err != nil {
		tb.Fatal(err)
	}
	status, header, b := testkit.Fetch(tb, client, req, headers...)
	return answer{status, header, b, method + " " + url + " " + redactKeys(strings.Join(headers, " "))}
}

// redactKeys keeps test logs in the habit of never printing a key.
func redactKeys(s string) string {
	return strings.ReplaceAll(s, authz.KeyPrefix, "sk_live_…")
}

func body(c authz.Code) string {
	b, _ := json.Marshal(map[string]map[string]string{"error": {"code": c.String(), "message": c.Message()}})
	return string(b)
}

// checkDenied asserts what the client sees of a denial: status, JSON body,
// content type, retry-after on 503, and that the upstream did not answer.
func checkDenied(tb testing.TB, got answer, c authz.Code) {
	tb.Helper()
	if got.status != c.Status() || got.body != body(c) {
		tb.Errorf("%s = %d %s; want %d %s", got.request, got.status, got.body, c.Status(), body(c))
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s: content-type %q; want application/json", got.request, ct)
	}
	if ra := got.header.Get("Retry-After"); (c == authz.CodeUnavailable) != (ra == "1") {
		tb.Errorf("%s: retry-after %q", got.request, ra)
	}
	if got.header.Get("X-Echo") != "" {
		tb.Errorf("%s: the upstream answered a denied request", got.request)
	}
}

// checkUpstream asserts a 200 from the upstream, which received the identity
// headers, once each, and none of the removed ones.
func checkUpstream(tb testing.TB, got answer, account, keyID string, removed ...string) echoed {
	tb.Helper()
	var e echoed
	if got.status != http.StatusOK || got.header.Get("X-Echo") != "upstream" {
		tb.Fatalf("%s = %d %s; want 200 from the upstream", got.request, got.status, got.body)
	}
	if err := json.Unmarshal([]byte(got.body), &e); err != nil {
		tb.Fatalf("%s: upstream answer %q: %v", got.request, got.body, err)
	}
	for name, want := range map[string]string{"X-Footstep-Account-Id": account, "X-Footstep-Key-Id": keyID} {
		if v := e.Headers[name]; len(v) != 1 || v[0] != want {
			tb.Errorf("%s: upstream got %s %q; want %q", got.request, name, v, want)
		}
	}
	for _, name := range removed {
		if v, ok := e.Headers[name]; ok {
			tb.Errorf("%s: upstream got %s (%d values); want it removed", got.request, name, len(v))
		}
	}
	return e
}
