package authz_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

const testKey = "sk_live_abc123def456"

var (
	key200 = authz.KeyPrefix + strings.Repeat("a", 200)
	key201 = authz.KeyPrefix + strings.Repeat("a", 201)
)

// showCredential prints a Credential with its keys in clear, which only a
// test may do: APIKey redacts itself.
func showCredential(c authz.Credential) string {
	return fmt.Sprintf("{Code:%v Key:%q Header:%q QueryKey:%q}", c.Code, string(c.Key), c.Header, string(c.QueryKey))
}

func TestParseSurface(t *testing.T) {
	tests := []struct {
		name   string
		want   authz.Surface
		wantOK bool
	}{
		{"", authz.SurfaceAPI, true},
		{"api", authz.SurfaceAPI, true},
		{"mcp", authz.SurfaceMCP, true},
		{"MCP", authz.SurfaceAPI, false},
		{"Api", authz.SurfaceAPI, false},
		{" mcp", authz.SurfaceAPI, false},
		{"grpc", authz.SurfaceAPI, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := authz.ParseSurface(tt.name)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseSurface(%q) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if got := authz.SurfaceAPI.String(); got != "api" {
		t.Errorf("SurfaceAPI.String() = %q; want %q", got, "api")
	}
	if got := authz.SurfaceMCP.String(); got != "mcp" {
		t.Errorf("SurfaceMCP.String() = %q; want %q", got, "mcp")
	}
	var zero authz.Surface
	if zero != authz.SurfaceAPI {
		t.Errorf("zero Surface = %v; want api", zero)
	}
}

type extractTest struct {
	name string
	req  authz.Request
	want authz.Credential
}

func okFrom(header, key string) authz.Credential {
	return authz.Credential{Code: authz.CodeOK, Key: authz.APIKey(key), Header: header}
}

var (
	malformed = authz.Credential{Code: authz.CodeInvalidKeyFormat}
	api       = authz.SurfaceAPI
	mcp       = authz.SurfaceMCP
)

func apiKeys(s authz.Surface, values ...string) authz.Request {
	return authz.Request{Surface: s, APIKeys: values, Path: "/v1/search"}
}

func bearers(s authz.Surface, values ...string) authz.Request {
	return authz.Request{Surface: s, Authorizations: values, Path: "/mcp"}
}

// extractTests also seed FuzzExtract.
var extractTests = []extractTest{
	// x-api-key, on both surfaces.
	{"x-api-key", apiKeys(api, testKey), okFrom(authz.HeaderAPIKey, testKey)},
	{"x-api-key on mcp", apiKeys(mcp, testKey), okFrom(authz.HeaderAPIKey, testKey)},
	{"every alphabet character", apiKeys(api, "sk_live_AZaz09_-"), okFrom(authz.HeaderAPIKey, "sk_live_AZaz09_-")},
	{"one suffix character", apiKeys(api, "sk_live_x"), okFrom(authz.HeaderAPIKey, "sk_live_x")},
	{"suffix of only underscores", apiKeys(api, "sk_live___"), okFrom(authz.HeaderAPIKey, "sk_live___")},
	{"200 suffix characters", apiKeys(api, key200), okFrom(authz.HeaderAPIKey, key200)},
	{"201 suffix characters", apiKeys(api, key201), malformed},
	{"surrounding spaces trimmed", apiKeys(api, "  "+testKey+"  "), okFrom(authz.HeaderAPIKey, testKey)},
	{"surrounding tabs trimmed", apiKeys(api, "\t"+testKey+" \t"), okFrom(authz.HeaderAPIKey, testKey)},

	// Missing or malformed.
	{"no credential", authz.Request{Path: "/v1/search"}, malformed},
	{"no credential on mcp", authz.Request{Surface: mcp, Path: "/mcp"}, malformed},
	{"empty x-api-key", apiKeys(api, ""), malformed},
	{"blank x-api-key", apiKeys(api, " \t "), malformed},
	{"prefix only", apiKeys(api, "sk_live_"), malformed},
	{"prefix only, spaces", apiKeys(api, " sk_live_ "), malformed},
	{"uppercase prefix", apiKeys(api, "SK_LIVE_abc123"), malformed},
	{"mixed-case prefix", apiKeys(api, "Sk_live_abc123"), malformed},
	{"test key", apiKeys(api, "sk_test_abc123"), malformed},
	{"no prefix", apiKeys(api, "abc123def456"), malformed},
	{"prefix without underscore", apiKeys(api, "sk_liveabc123"), malformed},
	{"inner space", apiKeys(api, "sk_live_abc def"), malformed},
	{"tab inside", apiKeys(api, "sk_live_abc\tdef"), malformed},
	{"newline inside", apiKeys(api, "sk_live_abc\ndef"), malformed},
	{"trailing CRLF", apiKeys(api, testKey+"\r\n"), malformed},
	{"NUL byte", apiKeys(api, testKey+"\x00"), malformed},
	{"dot", apiKeys(api, "sk_live_abc.def"), malformed},
	{"slash", apiKeys(api, "sk_live_abc/def"), malformed},
	{"plus", apiKeys(api, "sk_live_abc+def"), malformed},
	{"equals padding", apiKeys(api, "sk_live_abc="), malformed},
	{"percent-encoded", apiKeys(api, "sk_live_abc%20"), malformed},
	{"quoted", apiKeys(api, `"`+testKey+`"`), malformed},
	{"unicode letter", apiKeys(api, "sk_live_abcé"), malformed},
	{"fullwidth letter", apiKeys(api, "sk_live_ａbc"), malformed},
	{"non-breaking space around", apiKeys(api, "\u00a0"+testKey), malformed},
	{"invalid UTF-8", apiKeys(api, "sk_live_\xff"), malformed},
	{"two x-api-key values", apiKeys(api, testKey, testKey), malformed},
	{"two different x-api-key values", apiKeys(api, testKey, "sk_live_other"), malformed},
	{"one valid, one empty", apiKeys(api, testKey, ""), malformed},
	{"comma-joined values", apiKeys(api, "sk_live_a,sk_live_b"), malformed},
	{"comma-joined with space", apiKeys(api, testKey+", "+testKey), malformed},
	{"trailing comma", apiKeys(api, testKey+","), malformed},
	{"x-api-key with Bearer scheme", apiKeys(api, "Bearer "+testKey), malformed},

	// Bearer: only on mcp, scheme case-insensitive.
	{"Bearer on mcp", bearers(mcp, "Bearer "+testKey), okFrom(authz.HeaderAuthorization, testKey)},
	{"bearer lowercase", bearers(mcp, "bearer "+testKey), okFrom(authz.HeaderAuthorization, testKey)},
	{"BEARER uppercase", bearers(mcp, "BEARER "+testKey), okFrom(authz.HeaderAuthorization, testKey)},
	{"bEaReR mixed case", bearers(mcp, "bEaReR "+testKey), okFrom(authz.HeaderAuthorization, testKey)},
	{"Bearer with tab", bearers(mcp, "Bearer\t"+testKey), okFrom(authz.HeaderAuthorization, testKey)},
	{"Bearer surrounded by spaces", bearers(mcp, "  Bearer "+testKey+"  "), okFrom(authz.HeaderAuthorization, testKey)},
	{"Bearer 200 suffix characters", bearers(mcp, "Bearer "+key200), okFrom(authz.HeaderAuthorization, key200)},
	{"Bearer 201 suffix characters", bearers(mcp, "Bearer "+key201), malformed},
	{"Bearer on api ignored", bearers(api, "Bearer "+testKey), malformed},
	{"bearer on api ignored", bearers(api, "bearer "+testKey), malformed},
	{"Bearer without space", bearers(mcp, "Bearer"+testKey), malformed},
	{"Bearer alone", bearers(mcp, "Bearer"), malformed},
	{"Bearer and space", bearers(mcp, "Bearer "), malformed},
	{"empty authorization", bearers(mcp, ""), malformed},
	{"key without scheme", bearers(mcp, testKey), malformed},
	{"Basic scheme", bearers(mcp, "Basic c2tfbGl2ZV9hYmM6"), malformed},
	{"Token scheme", bearers(mcp, "Token "+testKey), malformed},
	{"Bearer with colon", bearers(mcp, "Bearer: "+testKey), malformed},
	{"Bearer test key", bearers(mcp, "Bearer sk_test_abc"), malformed},
	{"Bearer uppercase prefix", bearers(mcp, "Bearer SK_LIVE_abc"), malformed},
	{"Bearer two tokens", bearers(mcp, "Bearer "+testKey+" "+testKey), malformed},
	{"Bearer comma-joined", bearers(mcp, "Bearer "+testKey+",Bearer "+testKey), malformed},
	{"two authorization values", bearers(mcp, "Bearer "+testKey, "Bearer "+testKey), malformed},

	// x-api-key wins when both are present, even when it is malformed.
	{"both valid, x-api-key wins", authz.Request{Surface: mcp, APIKeys: []string{testKey}, Authorizations: []string{"Bearer sk_live_other"}}, okFrom(authz.HeaderAPIKey, testKey)},
	{"x-api-key malformed, Bearer valid", authz.Request{Surface: mcp, APIKeys: []string{"sk_test_abc"}, Authorizations: []string{"Bearer " + testKey}}, malformed},
	{"x-api-key empty, Bearer valid", authz.Request{Surface: mcp, APIKeys: []string{""}, Authorizations: []string{"Bearer " + testKey}}, malformed},
	{"two x-api-key, Bearer valid", authz.Request{Surface: mcp, APIKeys: []string{testKey, testKey}, Authorizations: []string{"Bearer " + testKey}}, malformed},
	{"x-api-key valid, Bearer malformed", authz.Request{Surface: mcp, APIKeys: []string{testKey}, Authorizations: []string{"Basic xyz"}}, okFrom(authz.HeaderAPIKey, testKey)},
	{"api: x-api-key valid, Bearer present", authz.Request{Surface: api, APIKeys: []string{testKey}, Authorizations: []string{"Bearer sk_live_other"}}, okFrom(authz.HeaderAPIKey, testKey)},

	// The query string beats every header.
	{"query beats valid x-api-key", authz.Request{APIKeys: []string{testKey}, Path: "/v1/search?api_key=" + testKey},
		authz.Credential{Code: authz.CodeKeyInQuery, QueryKey: testKey}},
	{"query beats valid Bearer", authz.Request{Surface: mcp, Authorizations: []string{"Bearer " + testKey}, Path: "/mcp?token=sk_live_other"},
		authz.Credential{Code: authz.CodeKeyInQuery, QueryKey: "sk_live_other"}},
	{"query beats malformed header", authz.Request{APIKeys: []string{"nope"}, Path: "/v1?sk_live_abc"},
		authz.Credential{Code: authz.CodeKeyInQuery, QueryKey: "sk_live_abc"}},
	{"malformed key in query", authz.Request{APIKeys: []string{testKey}, Path: "/v1?k=sk_live_"},
		authz.Credential{Code: authz.CodeKeyInQuery}},
	{"percent-encoded key in query", authz.Request{APIKeys: []string{testKey}, Path: "/v1?k=sk%5Flive%5Fabc"},
		authz.Credential{Code: authz.CodeKeyInQuery, QueryKey: "sk_live_abc"}},
	{"query without a key", authz.Request{APIKeys: []string{testKey}, Path: "/v1/search?q=sk_test_1&x=1"}, okFrom(authz.HeaderAPIKey, testKey)},
	{"key-like path segment is not a query", authz.Request{APIKeys: []string{testKey}, Path: "/v1/keys/sk_live_abc"}, okFrom(authz.HeaderAPIKey, testKey)},
}

func TestExtract(t *testing.T) {
	for _, tt := range extractTests {
		t.Run(tt.name, func(t *testing.T) {
			got := authz.Extract(tt.req)
			if got != tt.want {
				t.Errorf("Extract(%+v) = %s; want %s", tt.req, showCredential(got), showCredential(tt.want))
			}
		})
	}
}

// The caller's slices are read, never changed.
func TestExtractDoesNotModifyRequest(t *testing.T) {
	keys := []string{"  " + testKey + "  "}
	auths := []string{" Bearer " + testKey}
	authz.Extract(authz.Request{Surface: mcp, APIKeys: keys, Authorizations: auths})
	if keys[0] != "  "+testKey+"  " || auths[0] != " Bearer "+testKey {
		t.Errorf("Extract modified its input: %q %q", keys, auths)
	}
}
