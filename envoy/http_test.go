package envoy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

// newHTTPServer serves an HTTPHandler over the fake states.
func newHTTPServer(tb testing.TB, shadow bool, opts ...envoy.HTTPOption) *httptest.Server {
	tb.Helper()
	engine, err := envoy.NewEngine(envoy.EngineConfig{States: newStates(tb), Shadow: shadow})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(envoy.NewHTTPHandler(engine, nil, opts...))
	tb.Cleanup(srv.Close)
	return srv
}

// answer is what a test checks of a response.
type answer struct {
	status  int
	header  http.Header
	body    string
	request string // what was sent, for failure messages
}

// do sends method target with headers (name, value pairs; a name may repeat).
func do(tb testing.TB, srv *httptest.Server, method, target string, headers ...string) answer {
	tb.Helper()
	req, err := http.NewRequest(method, srv.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.URL.Opaque = target // sent as is, unescaped and unnormalized
	status, header, body := testkit.Fetch(tb, srv.Client(), req, headers...)
	return answer{status, header, body, method + " " + target + " " + strings.Join(headers, " ")}
}

// checkDenied asserts the documented denial for code.
func checkDenied(tb testing.TB, got answer, code string, status int) {
	tb.Helper()
	want := `{"error":{"code":"` + code + `","message":"` + message(tb, code) + `"}}`
	if got.status != status || got.body != want {
		tb.Errorf("%s = %d %s; want %d %s", got.request, got.status, got.body, status, want)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s: content-type %q; want application/json", got.request, ct)
	}
	if c := got.header.Get(envoy.HeaderCode); c != code {
		tb.Errorf("%s: %s %q; want %q", got.request, envoy.HeaderCode, c, code)
	}
	if ra := got.header.Get("Retry-After"); (status == 503) != (ra != "") {
		tb.Errorf("%s: retry-after %q with status %d", got.request, ra, status)
	}
	if _, ok := got.header[http.CanonicalHeaderKey(envoy.HeaderAccountID)]; ok {
		tb.Errorf("%s: denial carries %s", got.request, envoy.HeaderAccountID)
	}
}

func message(tb testing.TB, code string) string {
	tb.Helper()
	for _, c := range authz.Codes {
		if c.String() == code {
			return c.Message()
		}
	}
	tb.Fatalf("no code %q", code)
	return ""
}

// ownRemoved is what every allowed HTTP answer that is not a shadow denial
// lists for removal besides the credential: the package's own headers,
// which Envoy's http_service does not forward and so cannot be seen.
const ownRemoved = "x-footstep-authz-shadow,x-footstep-surface,x-footstep-authz-code"

// checkAllowed asserts a 200 with the given identity and header removals.
func checkAllowed(tb testing.TB, got answer, account, keyID, remove string) {
	tb.Helper()
	if got.status != 200 || got.body != "" {
		tb.Fatalf("%s = %d %q; want 200 and no body", got.request, got.status, got.body)
	}
	for name, want := range map[string]string{envoy.HeaderAccountID: account, envoy.HeaderKeyID: keyID, envoy.HeaderEnvoyRemove: remove} {
		if v, ok := got.header[http.CanonicalHeaderKey(name)]; !ok && name != envoy.HeaderEnvoyRemove || strings.Join(v, ",") != want {
			tb.Errorf("%s: %s = %q (present %v); want %q", got.request, name, v, ok, want)
		}
	}
}

func TestHTTPDecisions(t *testing.T) {
	srv := newHTTPServer(t, false)
	tests := []struct {
		name    string
		key     string
		code    string
		status  int
		account string
	}{
		{"active", keyActive, "ok", 200, "acct_rich"},
		{"no balance", keyBroke, "insufficient_balance", 402, ""},
		{"suspended", keySuspended, "key_suspended", 403, ""},
		{"revoked", keyRevoked, "key_revoked", 403, ""},
		{"unknown", keyUnknown, "invalid_api_key", 403, ""},
		{"unreadable", keyReadFails, "authz_unavailable", 503, ""},
		{"malformed", "sk_test_nope", "invalid_key_format", 401, ""},
		{"inner space", "sk_live_a b", "invalid_key_format", 401, ""},
		{"comma-joined", keyActive + "," + keyActive, "invalid_key_format", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"GET", "POST", "DELETE"} {
				got := do(t, srv, method, "/v1/things?page=2", "X-Api-Key", tt.key)
				if tt.status == 200 {
					checkAllowed(t, got, tt.account, "k1", authz.HeaderAPIKey+","+ownRemoved)
					continue
				}
				checkDenied(t, got, tt.code, tt.status)
			}
		})
	}
}

func TestHTTPCredentialHeaders(t *testing.T) {
	srv := newHTTPServer(t, false)
	tests := []struct {
		name    string
		headers []string
		code    string
		status  int
	}{
		{"no credential", nil, "invalid_key_format", 401},
		{"two x-api-key lines", []string{"X-Api-Key", keyActive, "X-Api-Key", keyActive}, "invalid_key_format", 401},
		{"empty x-api-key", []string{"X-Api-Key", ""}, "invalid_key_format", 401},
		{"bearer on api surface", []string{"Authorization", "Bearer " + keyActive}, "invalid_key_format", 401},
		{"x-api-key wins over bearer", []string{"X-Footstep-Surface", "mcp", "Authorization", "Bearer " + keyActive, "X-Api-Key", keyRevoked}, "key_revoked", 403},
		{"two bearer lines on mcp", []string{"X-Footstep-Surface", "mcp", "Authorization", "Bearer " + keyActive, "Authorization", "Bearer " + keyActive}, "invalid_key_format", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDenied(t, do(t, srv, "GET", "/", tt.headers...), tt.code, tt.status)
		})
	}
}

func TestHTTPKeyInQuery(t *testing.T) {
	srv := newHTTPServer(t, false, envoy.WithPathPrefix("/authz"))
	valid := []string{"X-Api-Key", keyActive}
	tests := []struct {
		name    string
		target  string
		headers []string
	}{
		{"request line", "/v1?api_key=" + keyUnknown, valid},
		{"request line under the prefix", "/authz/v1?k=" + keyActive, valid},
		{"request line, encoded", "/v1?k=sk%5Flive%5Fabc", valid},
		{"x-forwarded-uri", "/", append([]string{"X-Forwarded-Uri", "/v1?key=" + keyActive}, valid...)},
		{"x-original-uri", "/", append([]string{"X-Original-Uri", "/v1?key=" + keyActive}, valid...)},
		{"second x-forwarded-uri line", "/", append([]string{"X-Forwarded-Uri", "/v1", "X-Forwarded-Uri", "/v1?a=" + keyActive}, valid...)},
		{"x-original-uri behind a clean x-forwarded-uri", "/", append([]string{"X-Forwarded-Uri", "/v1", "X-Original-Uri", "/v1?a=" + keyActive}, valid...)},
		{"request line behind a clean x-forwarded-uri", "/?a=" + keyActive, append([]string{"X-Forwarded-Uri", "/v1"}, valid...)},
		{"no credential at all", "/v1?a=" + keyActive, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDenied(t, do(t, srv, "GET", tt.target, tt.headers...), "key_in_query", 401)
		})
	}
}

func TestHTTPSurface(t *testing.T) {
	bearer := []string{"Authorization", "Bearer " + keyActive}
	tests := []struct {
		name    string
		prefix  string
		target  string
		headers []string
		mcp     bool
	}{
		{"default is api", "", "/v1", nil, false},
		{"path /mcp", "", "/mcp", nil, true},
		{"path under /mcp/", "", "/mcp/tools?x=1", nil, true},
		{"path /mcpx is not mcp", "", "/mcpx", nil, false},
		{"absolute form", "", "http://example.com/mcp/x", nil, true},
		{"header mcp", "", "/v1", []string{"X-Footstep-Surface", "mcp"}, true},
		{"header MCP, any case", "", "/v1", []string{"X-Footstep-Surface", " MCP "}, true},
		{"header api wins over the path", "", "/mcp", []string{"X-Footstep-Surface", "api"}, false},
		{"unknown header is api", "", "/mcp", []string{"X-Footstep-Surface", "graphql"}, false},
		{"repeated header is api", "", "/mcp", []string{"X-Footstep-Surface", "mcp", "X-Footstep-Surface", "mcp"}, false},
		{"x-forwarded-uri names the path", "", "/", []string{"X-Forwarded-Uri", "/mcp/x"}, true},
		{"x-original-uri names the path", "", "/", []string{"X-Original-Uri", "/mcp"}, true},
		{"x-forwarded-uri first", "", "/", []string{"X-Forwarded-Uri", "/v1", "X-Original-Uri", "/mcp"}, false},
		{"prefix stripped", "/authz", "/authz/mcp/x", nil, true},
		{"prefix with a trailing slash", "/authz/", "/authz/mcp", nil, true},
		{"prefix not stripped when unset", "", "/authz/mcp/x", nil, false},
		{"path without the prefix", "/authz", "/mcp/x", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHTTPServer(t, false, envoy.WithPathPrefix(tt.prefix))
			got := do(t, srv, "POST", tt.target, append(tt.headers, bearer...)...)
			if !tt.mcp {
				checkDenied(t, got, "invalid_key_format", 401)
				if wa := got.header.Get("Www-Authenticate"); wa != "" {
					t.Errorf("%s: www-authenticate %q on the api surface", got.request, wa)
				}
				return
			}
			checkAllowed(t, got, "acct_rich", "k1", "x-api-key,authorization,"+ownRemoved)
			got = do(t, srv, "POST", tt.target, tt.headers...)
			checkDenied(t, got, "invalid_key_format", 401)
			if wa := got.header.Get("Www-Authenticate"); wa != "Bearer" {
				t.Errorf("%s: www-authenticate %q; want Bearer on the mcp surface", got.request, wa)
			}
		})
	}
}

func TestHTTPShadow(t *testing.T) {
	srv := newHTTPServer(t, true)
	tests := []struct {
		name, key, code, account, keyID, remove string
	}{
		{"allowed", keyActive, "", "acct_rich", "k1", "x-api-key," + ownRemoved},
		{"revoked", keyRevoked, "key_revoked", "acct_rich", "k4", "x-footstep-surface,x-footstep-authz-code"},
		{"unknown", keyUnknown, "invalid_api_key", "", "", "x-footstep-account-id,x-footstep-key-id,x-footstep-surface,x-footstep-authz-code"},
		{"unreadable", keyReadFails, "authz_unavailable", "", "", "x-footstep-account-id,x-footstep-key-id,x-footstep-surface,x-footstep-authz-code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, srv, "GET", "/v1", "X-Api-Key", tt.key, "X-Footstep-Account-Id", "acct_forged")
			checkAllowed(t, got, tt.account, tt.keyID, tt.remove)
			if s := got.header.Get(envoy.HeaderShadow); s != tt.code {
				t.Errorf("%s: %s %q; want %q", got.request, envoy.HeaderShadow, s, tt.code)
			}
		})
	}
}

func TestHTTPDenialPath(t *testing.T) {
	srv := newHTTPServer(t, false, envoy.WithPathPrefix("/authz"))
	for _, c := range authz.Codes {
		if c == authz.CodeOK {
			continue
		}
		t.Run(c.String(), func(t *testing.T) {
			// The credential is ignored: the path renders, it does not decide.
			checkDenied(t, do(t, srv, "GET", envoy.DenialPath+c.String(), "X-Api-Key", keyActive), c.String(), c.Status())
		})
	}
	for _, name := range []string{"", "ok", "nonsense", "key_revoked/x", "KEY_REVOKED"} {
		t.Run("never allows "+name, func(t *testing.T) {
			checkDenied(t, do(t, srv, "GET", envoy.DenialPath+name, "X-Api-Key", keyActive), "authz_unavailable", 503)
		})
	}
	t.Run("mcp 401 asks for a bearer token", func(t *testing.T) {
		got := do(t, srv, "GET", envoy.DenialPath+"invalid_key_format", "X-Footstep-Surface", "mcp")
		checkDenied(t, got, "invalid_key_format", 401)
		if wa := got.header.Get("Www-Authenticate"); wa != "Bearer" {
			t.Errorf("www-authenticate %q; want Bearer", wa)
		}
	})
	t.Run("under the envoy prefix it is an ordinary path", func(t *testing.T) {
		got := do(t, srv, "GET", "/authz"+envoy.DenialPath+"key_revoked", "X-Api-Key", keyActive)
		checkAllowed(t, got, "acct_rich", "k1", "x-api-key,"+ownRemoved)
	})
}

func TestCheckPathPrefix(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{{"", true}, {"/authz", true}, {"/authz/", true}, {"authz", false}, {"/a?b", false}, {"/a#b", false}, {"/a b", false}} {
		if err := envoy.CheckPathPrefix(tt.prefix); (err == nil) != tt.ok {
			t.Errorf("CheckPathPrefix(%q) = %v; want ok %v", tt.prefix, err, tt.ok)
		}
	}
}
