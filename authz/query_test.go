package authz_test

import (
	"testing"

	"github.com/footstep/authz/authz"
)

type queryKeyTest struct {
	name      string
	target    string
	wantKey   authz.APIKey // set only when the key is well-formed
	wantFound bool
}

// queryKeyTests also seed FuzzQueryKey and FuzzExtract.
var queryKeyTests = []queryKeyTest{
	// No key: no false positive.
	{"no query", "/v1/search", "", false},
	{"empty query", "/v1/search?", "", false},
	{"plain query", "/v1/search?q=shoes&page=2", "", false},
	{"test key in query", "/v1/search?q=sk_test_1&x=1", "", false},
	{"uppercase prefix in query", "/v1/search?q=SK_LIVE_abc", "", false},
	{"prefix inside a value", "/v1/search?q=xsk_live_abc", "", false},
	{"prefix later in a value", "/v1/search?q=docs+about+sk_live_+keys", "", false},
	{"key in the path only", "/v1/keys/sk_live_abc?x=1", "", false},
	{"key in an encoded path only", "/v1/keys/sk%5Flive%5Fabc", "", false},
	{"prefix without underscore", "/v1?q=sk_liveabc", "", false},
	{"lone percent", "/v1?q=%", "", false},
	{"malformed escapes, no key", "/v1?q=%zz&r=%4&s=%%", "", false},
	{"separators only", "/v1?&&;;==", "", false},
	{"encoded non-key", "/v1?q=%73%6b%5f%74%65%73%74", "", false},

	// A key as a value, in each position, or as a name.
	{"value, only parameter", "/v1/search?api_key=" + testKey, testKey, true},
	{"value, first", "/v1/search?api_key=" + testKey + "&q=shoes&page=2", testKey, true},
	{"value, middle", "/v1/search?q=shoes&api_key=" + testKey + "&page=2", testKey, true},
	{"value, last", "/v1/search?q=shoes&page=2&api_key=" + testKey, testKey, true},
	{"name, only parameter", "/v1/search?" + testKey, testKey, true},
	{"name with a value", "/v1/search?" + testKey + "=1", testKey, true},
	{"name, middle", "/v1/search?q=1&" + testKey + "&page=2", testKey, true},
	{"name with empty value", "/v1/search?q=1&" + testKey + "=", testKey, true},
	{"semicolon separator", "/v1/search?q=1;api_key=" + testKey, testKey, true},
	{"semicolon then name", "/v1/search?q=1;" + testKey, testKey, true},
	{"empty name", "/v1/search?=" + testKey, testKey, true},
	{"first of two keys", "/v1?a=sk_live_one&b=sk_live_two", "sk_live_one", true},
	{"200 suffix characters", "/v1?k=" + key200, authz.APIKey(key200), true},
	{"path with its own key-free segments", "/v1/a/b?k=" + testKey, testKey, true},
	{"root", "/?k=" + testKey, testKey, true},
	{"target that is only a query", "?k=" + testKey, testKey, true},

	// Percent-encoded.
	{"encoded underscores", "/v1?k=sk%5Flive%5Fabc", "sk_live_abc", true},
	{"encoded lowercase hex", "/v1?k=sk%5flive%5fabc", "sk_live_abc", true},
	{"fully encoded", "/v1?k=%73%6b%5f%6c%69%76%65%5f%61%62%63", "sk_live_abc", true},
	{"last letter encoded", "/v1?k=sk_live_ab%63", "sk_live_abc", true},
	{"uppercase hex escape of a letter", "/v1?k=%53k_live_abc", "", false},
	{"one letter encoded", "/v1?k=sk_liv%65_abc", "sk_live_abc", true},
	{"double-encoded", "/v1?k=sk%255Flive%255Fabc", "sk_live_abc", true},
	{"double-encoded first letter", "/v1?k=%2573k_live_abc", "sk_live_abc", true},
	{"triple-encoded", "/v1?k=sk%25255Flive%25255Fabc", "sk_live_abc", true},
	{"encoded name", "/v1?%73k_live_abc=1", "sk_live_abc", true},
	{"encoded leading space", "/v1?k=%20" + testKey, testKey, true},
	{"encoded ampersand before key is one value", "/v1?k=%26" + testKey, "", false},

	// Bearer and '+' forms.
	{"plus-separated Bearer", "/v1?authorization=Bearer+" + testKey, testKey, true},
	{"space-encoded Bearer", "/v1?authorization=Bearer%20" + testKey, testKey, true},
	{"lowercase bearer", "/v1?authorization=bearer%20" + testKey, testKey, true},
	{"encoded plus Bearer", "/v1?authorization=Bearer%2B" + testKey, testKey, true},
	{"surrounding pluses", "/v1?k=+" + testKey + "+", testKey, true},
	{"Bearer with prefix only", "/v1?authorization=Bearer+sk_live_", "", true},

	// Found but not well-formed: denied, nothing to report.
	{"prefix only", "/v1?k=sk_live_", "", true},
	{"201 suffix characters", "/v1?k=" + key201, "", true},
	{"other character", "/v1?k=sk_live_abc!", "", true},
	{"inner plus", "/v1?k=sk_live_abc+def", "", true},
	{"comma-joined", "/v1?k=sk_live_a,sk_live_b", "", true},
	{"malformed escape after key", "/v1?k=sk_live_abc%ZZ", "", true},
	{"trailing percent", "/v1?k=sk_live_abc%", "", true},
	{"encoded key, malformed escape after", "/v1?k=sk%5Flive%5Fabc%ZZ", "", true},
	{"encoded key, trailing percent", "/v1?k=sk%5Flive%5Fabc%", "", true},
	{"encoded key, malformed escape in another parameter", "/v1?k=sk%5Flive%5Fabc&q=%ZZ", "sk_live_abc", true},
	{"fragment-like suffix", "/v1?k=sk_live_abc#frag", "", true},
}

func TestQueryKey(t *testing.T) {
	for _, tt := range queryKeyTests {
		t.Run(tt.name, func(t *testing.T) {
			key, found := authz.QueryKey(tt.target)
			if key != tt.wantKey || found != tt.wantFound {
				t.Errorf("QueryKey(%q) = %q, %v; want %q, %v", tt.target, string(key), found, string(tt.wantKey), tt.wantFound)
			}
		})
	}
}

// A key anywhere the table finds one denies the request, with every header.
func TestQueryKeyDeniesExtract(t *testing.T) {
	for _, tt := range queryKeyTests {
		t.Run(tt.name, func(t *testing.T) {
			req := authz.Request{Surface: authz.SurfaceMCP, APIKeys: []string{testKey}, Path: tt.target}
			got := authz.Extract(req)
			want := authz.Credential{Code: authz.CodeOK, Key: testKey, Header: authz.HeaderAPIKey}
			if tt.wantFound {
				want = authz.Credential{Code: authz.CodeKeyInQuery, QueryKey: tt.wantKey}
			}
			if got != want {
				t.Errorf("Extract(%+v) = %s; want %s", req, showCredential(got), showCredential(want))
			}
		})
	}
}
