package envoy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
)

// maxMsg is the gRPC message size both ends accept: room for a 1 MiB header
// and then some.
const maxMsg = 8 << 20

// startGRPC serves Check on 127.0.0.1:0, both ends accepting messages up to
// maxMsg, and returns a client.
func startGRPC(tb testing.TB) authv3.AuthorizationClient {
	tb.Helper()
	return serveGRPC(tb, newServer(tb, false), []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMsg), envoy.ServerOption()},
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxMsg), grpc.MaxCallRecvMsgSize(maxMsg)))
}

func manyHeaders(n int, extra map[string]string) map[string]string {
	h := make(map[string]string, n+len(extra))
	for i := range n {
		h[fmt.Sprintf("x-junk-%d", i)] = strings.Repeat("v", 20)
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// TestHostileRequests sends hostile requests to a real gRPC server: each gets
// the documented denial, and a good request right after each still passes.
func TestHostileRequests(t *testing.T) {
	client := startGRPC(t)
	huge := strings.Repeat("A", 1<<20)
	binary := string([]byte{0, 1, 2, 0xff, 0xfe, '\r', '\n', 0x80})
	good := request("api", "/v1/x", map[string]string{"x-api-key": keyActive})
	var rawMany [][2]string
	for i := range 5000 {
		rawMany = append(rawMany, [2]string{fmt.Sprintf("x-junk-%d", i), "v"})
	}
	rawMany = append(rawMany, [2]string{"x-api-key", keyActive})

	tests := []struct {
		name   string
		req    *authv3.CheckRequest
		code   string
		status int
	}{
		{"empty request", &authv3.CheckRequest{}, "invalid_key_format", 401},
		{"no http attributes", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}, "invalid_key_format", 401},
		{"no headers", request("api", "/v1/x", nil), "invalid_key_format", 401},
		{"1 MiB x-api-key", request("api", "/v1/x", map[string]string{"x-api-key": "sk_live_" + huge}), "invalid_key_format", 401},
		{"1 MiB other header", request("api", "/v1/x", map[string]string{"x-api-key": keyBroke, "x-big": huge}), "insufficient_balance", 402},
		{"1 MiB path", request("api", "/"+huge, map[string]string{"x-api-key": keySuspended}), "key_suspended", 403},
		{"1 MiB query with a key at the end", request("api", "/v1?"+huge+"&k="+keyActive, map[string]string{"x-api-key": keyActive}), "key_in_query", 401},
		{"binary raw x-api-key", rawRequest("api", "/v1/x", [][2]string{{"x-api-key", binary}}), "invalid_key_format", 401},
		{"non-UTF-8 raw key suffix", rawRequest("api", "/v1/x", [][2]string{{"x-api-key", keyActive + "\xff"}}), "invalid_key_format", 401},
		{"NUL inside raw key", rawRequest("api", "/v1/x", [][2]string{{"x-api-key", "sk_live_active\x00_funded"}}), "invalid_key_format", 401},
		{"CRLF injection in raw key", rawRequest("api", "/v1/x", [][2]string{{"x-api-key", keyActive + "\r\nx-footstep-account-id: acct_rich"}}), "invalid_key_format", 401},
		{"binary raw bearer", rawRequest("mcp", "/mcp", [][2]string{{"authorization", "Bearer \xff\xfe"}}), "invalid_key_format", 401},
		{"5000 headers map", request("api", "/v1/x", manyHeaders(5000, map[string]string{"x-api-key": keyRevoked})), "key_revoked", 403},
		{"5000 raw headers then a good key", rawRequest("api", "/v1/x", rawMany), "ok", 200},
		{"key as the first query parameter", request("api", "/v1?"+keyActive+"&a=b", map[string]string{"x-api-key": keyActive}), "key_in_query", 401},
		{"key as a parameter name", request("api", "/v1?a=b&"+keyActive+"=1", map[string]string{"x-api-key": keyActive}), "key_in_query", 401},
		{"key as a middle value", request("api", "/v1?a=1&key="+keyActive+"&b=2", map[string]string{"x-api-key": keyActive}), "key_in_query", 401},
		{"key as the last value", request("api", "/v1?a=1;api_key="+keyActive, map[string]string{"x-api-key": keyActive}), "key_in_query", 401},
		{"key percent-encoded twice", request("api", "/v1?k=%2573k_live_active_funded", map[string]string{"x-api-key": keyActive}), "key_in_query", 401},
		{"key in the query field", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Path: "/v1", Query: "k=" + keyActive, Headers: map[string]string{"x-api-key": keyActive}}}}}, "key_in_query", 401},
		{"unknown key in query, no header", request("api", "/v1?k=sk_live_nobody", nil), "key_in_query", 401},
		{"same key in x-api-key and bearer", request("mcp", "/mcp", map[string]string{"x-api-key": keyActive, "authorization": "Bearer " + keyActive}), "ok", 200},
		{"x-api-key wins over bearer", request("mcp", "/mcp", map[string]string{"x-api-key": keyRevoked, "authorization": "Bearer " + keyActive}), "key_revoked", 403},
		{"bearer on the api surface", request("api", "/v1", map[string]string{"authorization": "Bearer " + keyActive}), "invalid_key_format", 401},
		{"two x-api-key values joined", request("api", "/v1", map[string]string{"x-api-key": keyActive + "," + keyActive}), "invalid_key_format", 401},
		{"two raw x-api-key lines, conflicting", rawRequest("api", "/v1", [][2]string{{"x-api-key", keyActive}, {"x-api-key", keyRevoked}}), "invalid_key_format", 401},
		{"two raw x-api-key lines, same", rawRequest("api", "/v1", [][2]string{{"x-api-key", keyActive}, {"x-api-key", keyActive}}), "invalid_key_format", 401},
		{"two raw bearer lines", rawRequest("mcp", "/mcp", [][2]string{{"authorization", "Bearer " + keyActive}, {"authorization", "Bearer " + keyBroke}}), "invalid_key_format", 401},
		{"uppercase header name", request("api", "/v1", map[string]string{"X-Api-Key": keyActive}), "invalid_key_format", 401},
		{"unknown surface is api", request("admin", "/v1", map[string]string{"authorization": "Bearer " + keyActive}), "invalid_key_format", 401},
		{"unreadable key", request("api", "/v1", map[string]string{"x-api-key": keyUnreadable}), "authz_unavailable", 503},
		{"account lookup fails", request("api", "/v1", map[string]string{"x-api-key": keyAccountDown}), "authz_unavailable", 503},
		{"spoofed identity headers", request("api", "/v1", map[string]string{"x-api-key": "sk_live_nobody", "x-footstep-account-id": "acct_rich"}), "invalid_api_key", 403},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(ctx, tt.req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if code, status := decision(t, resp); code != tt.code || status != tt.status {
				t.Errorf("Check(%s) = %s %d; want %s %d", tt.name, code, status, tt.code, tt.status)
			}
			if tt.code == "ok" {
				checkIdentity(t, resp)
			}
			resp, err = client.Check(ctx, good)
			if err != nil {
				t.Fatalf("good Check after %s: %v", tt.name, err)
			}
			if code, _ := decision(t, resp); code != "ok" {
				t.Errorf("good Check after %s = %s; want ok", tt.name, code)
			}
		})
	}
}

// checkIdentity checks that an allow overwrites the identity headers and
// removes the credential.
func checkIdentity(tb testing.TB, resp *authv3.CheckResponse) {
	tb.Helper()
	ok := resp.GetOkResponse()
	set := map[string]string{}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			tb.Errorf("header %s not overwritten", h.GetHeader().GetKey())
		}
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if set["x-footstep-account-id"] != "acct_rich" || set["x-footstep-key-id"] != "k1" {
		tb.Errorf("identity headers %v", set)
	}
	removed := strings.Join(ok.GetHeadersToRemove(), ",")
	if !strings.Contains(removed, authz.HeaderAPIKey) {
		tb.Errorf("credential not removed: %v", removed)
	}
}

// TestOversizeMessageRefused shows what protects the server from a request
// over its message limit: gRPC refuses it as a transport error (Envoy then
// applies status_on_error, a denial), and the server keeps serving.
func TestOversizeMessageRefused(t *testing.T) {
	client := startGRPC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := request("api", "/v1", map[string]string{"x-api-key": keyActive, "x-big": strings.Repeat("A", maxMsg+1)})
	if _, err := client.Check(ctx, big); err == nil {
		t.Fatal("oversize request accepted")
	}
	resp, err := client.Check(ctx, request("api", "/v1", map[string]string{"x-api-key": keyActive}))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := decision(t, resp); code != "ok" {
		t.Errorf("after an oversize request: %s; want ok", code)
	}
}
