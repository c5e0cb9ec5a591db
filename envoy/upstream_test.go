package envoy_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/footstep/authz/envoy"
)

// clientHeaders returns the header lines of a CheckRequest, names
// lowercased as Envoy keeps them, from both encodings.
func clientHeaders(req *authv3.CheckRequest) [][2]string {
	http := req.GetAttributes().GetRequest().GetHttp()
	var lines [][2]string
	for _, h := range http.GetHeaderMap().GetHeaders() {
		lines = append(lines, [2]string{strings.ToLower(h.GetKey()), string(h.GetRawValue()) + h.GetValue()})
	}
	for k, v := range http.GetHeaders() {
		lines = append(lines, [2]string{strings.ToLower(k), v})
	}
	return lines
}

// upstream applies an allowed answer to the client's headers as Envoy does:
// each header set replaces every line of that name, and headers_to_remove
// removes every line of each name. Names match in any case. The answer
// never sets and removes the same name, so the order of the two steps,
// which the result would otherwise depend on, does not matter.
func upstream(tb testing.TB, lines [][2]string, ok *authv3.OkHttpResponse) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	for _, l := range lines {
		out[l[0]] = append(out[l[0]], l[1])
	}
	set := map[string]bool{}
	for _, h := range ok.GetHeaders() {
		name := strings.ToLower(h.GetHeader().GetKey())
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			tb.Errorf("header %s appended, not overwritten", name)
		}
		set[name] = true
		out[name] = []string{h.GetHeader().GetValue()}
	}
	for _, name := range ok.GetHeadersToRemove() {
		if name != strings.ToLower(name) || set[name] {
			tb.Errorf("headers_to_remove %q: not lowercase, or also set", name)
		}
		delete(out, strings.ToLower(name))
	}
	if r := ok.GetHeadersToRemove(); len(slices.Compact(slices.Sorted(slices.Values(r)))) != len(r) {
		tb.Errorf("headers_to_remove repeats a name: %v", r)
	}
	return out
}

// TestNoClientFootstepHeaderUpstream checks invariant 5 over a real gRPC
// connection: whatever x-footstep-* headers a client sends, in any case and
// repeated, the upstream gets only the ones the answer set, in enforce and in
// shadow mode, with both header encodings.
func TestNoClientFootstepHeaderUpstream(t *testing.T) {
	spoofed := [][2]string{
		{"X-Footstep-Account-Id", "acct_forged"}, {"x-footstep-KEY-id", "k_forged"},
		{"x-footstep-authz-shadow", "key_revoked"}, {"X-FOOTSTEP-AUTHZ-SHADOW", "again"},
		{"x-footstep-surface", "mcp"}, {"x-footstep-anything", "1"}, {"x-footstep-anything", "2"},
		{"x-footstep-authz-code", "ok"}, {"x-other", "kept"},
	}
	tests := []struct {
		name, key string
		shadow    bool
		// want is every x-footstep-* header the upstream may get, and x-api-key when it stays.
		want map[string]string
	}{
		{"enforce, active", keyActive, false, map[string]string{"x-footstep-account-id": "acct_rich", "x-footstep-key-id": "k1"}},
		{"shadow, active", keyActive, true, map[string]string{"x-footstep-account-id": "acct_rich", "x-footstep-key-id": "k1"}},
		{"shadow, revoked", keyRevoked, true, map[string]string{"x-footstep-account-id": "acct_rich", "x-footstep-key-id": "k4",
			"x-footstep-authz-shadow": "key_revoked", "x-api-key": keyRevoked}},
		{"shadow, unknown", "sk_live_nobody", true, map[string]string{"x-footstep-authz-shadow": "invalid_api_key", "x-api-key": "sk_live_nobody"}},
		{"shadow, malformed", "nope", true, map[string]string{"x-footstep-authz-shadow": "invalid_key_format", "x-api-key": "nope"}},
		{"shadow, unreadable", keyUnreadable, true, map[string]string{"x-footstep-authz-shadow": "authz_unavailable", "x-api-key": keyUnreadable}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []grpc.ServerOption{envoy.ServerOption()}
	clients := map[bool]authv3.AuthorizationClient{false: serveGRPC(t, newServer(t, false), opts), true: serveGRPC(t, newServer(t, true), opts)}
	for _, tt := range tests {
		headers := append(slices.Clone(spoofed), [2]string{"x-api-key", tt.key})
		asMap := map[string]string{}
		for _, h := range headers {
			asMap[h[0]] = h[1] // a map holds one line per name, as Envoy joins repeats
		}
		for encoding, req := range map[string]*authv3.CheckRequest{
			"header_map": rawRequest("api", "/v1", headers),
			"headers":    request("api", "/v1", asMap),
		} {
			t.Run(tt.name+", "+encoding, func(t *testing.T) {
				resp, err := clients[tt.shadow].Check(ctx, req)
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if code, _ := decision(t, resp); code != "ok" {
					t.Fatalf("Check(%s) = %s; want ok", tt.name, code)
				}
				got := upstream(t, clientHeaders(req), resp.GetOkResponse())
				for name, v := range got {
					if want, ok := tt.want[name]; (ok || strings.HasPrefix(name, envoy.HeaderPrefix) || name == "x-api-key") && (!ok || len(v) != 1 || v[0] != want) {
						t.Errorf("Check(%s): upstream %s = %q; want %q (present %v)", tt.name, name, v, want, ok)
					}
				}
				for name := range tt.want {
					if _, ok := got[name]; !ok {
						t.Errorf("Check(%s): upstream has no %s", tt.name, name)
					}
				}
				if v := got["x-other"]; len(v) != 1 || v[0] != "kept" {
					t.Errorf("Check(%s): upstream x-other = %q; want kept", tt.name, v)
				}
			})
		}
	}
}

// TestOrdinaryAllowIsCached checks that an allowed request without any
// x-footstep-* header gets the stored answer (no rendering), and that one
// with such a header gets its own answer without changing the stored one.
func TestOrdinaryAllowIsCached(t *testing.T) {
	srv := newServer(t, false)
	ctx := context.Background()
	plain := request("api", "/v1", map[string]string{"x-api-key": keyActive, "x-footsteps": "not ours"})
	first, _ := srv.Check(ctx, plain)
	again, _ := srv.Check(ctx, plain)
	if first != again {
		t.Errorf("Check of an ordinary allowed request rendered a new answer; want the stored one")
	}
	spoof, _ := srv.Check(ctx, request("api", "/v1", map[string]string{"x-api-key": keyActive, "x-footstep-x": "1"}))
	if spoof == first || !slices.Contains(spoof.GetOkResponse().GetHeadersToRemove(), "x-footstep-x") {
		t.Errorf("Check with x-footstep-x = %v; want its own answer removing it", spoof.GetOkResponse())
	}
	if slices.Contains(first.GetOkResponse().GetHeadersToRemove(), "x-footstep-x") {
		t.Errorf("stored answer changed: %v", first.GetOkResponse())
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = srv.Check(ctx, plain) }); n > 2 {
		t.Errorf("Check of an ordinary allowed request: %.0f allocations; want at most 2", n)
	}
}

// TestHTTPNoClientFootstepHeaderUpstream checks invariant 5 for the HTTP
// service: every x-footstep-* header a client sent, and every one of this
// package's own that a proxy might not forward, is either set by the answer
// or listed in x-envoy-auth-headers-to-remove, in enforce and shadow mode.
func TestHTTPNoClientFootstepHeaderUpstream(t *testing.T) {
	spoofed := []string{"X-Footstep-Account-Id", "acct_forged", "x-footstep-KEY-id", "k_forged",
		"x-footstep-authz-shadow", "key_revoked", "X-FOOTSTEP-AUTHZ-SHADOW", "again",
		"x-footstep-anything", "1", "x-footstep-anything", "2"}
	own := []string{envoy.HeaderAccountID, envoy.HeaderKeyID, envoy.HeaderShadow, "x-footstep-surface", envoy.HeaderCode, "x-footstep-anything"}
	for _, tt := range []struct {
		name, key string
		shadow    bool
	}{
		{"enforce, active", keyActive, false},
		{"shadow, active", keyActive, true},
		{"shadow, revoked", keyRevoked, true},
		{"shadow, unknown", keyUnknown, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, newHTTPServer(t, tt.shadow), "GET", "/v1", append(slices.Clone(spoofed), "X-Api-Key", tt.key)...)
			if got.status != 200 {
				t.Fatalf("%s = %d; want 200", got.request, got.status)
			}
			removed := strings.Split(got.header.Get(envoy.HeaderEnvoyRemove), ",")
			for _, name := range own {
				// A removed identity header is also answered empty, for
				// forward-auth proxies that can only copy it.
				set := got.header.Get(name) != ""
				if set == slices.Contains(removed, name) {
					t.Errorf("%s: %s set %v, removed %v; want exactly one", got.request, name, set, removed)
				}
			}
		})
	}
}
