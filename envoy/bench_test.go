package envoy_test

import (
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

// Bench keys have the length of real keys (sk_live_ and 32 characters), so
// that copies and hashing cost what they cost in production.
const (
	benchActive    = "sk_live_active0funded0aaaaaaaaaaaaaaaaaa"
	benchBroke     = "sk_live_active0broke0bbbbbbbbbbbbbbbbbbb"
	benchSuspended = "sk_live_suspended0cccccccccccccccccccccc"
	benchRevoked   = "sk_live_revoked0dddddddddddddddddddddddd"
	benchUnread    = "sk_live_unreadable0eeeeeeeeeeeeeeeeeeeee"
	benchUnknown   = "sk_live_unknown0fffffffffffffffffffffffff"
)

// newBenchStates answers cache misses from the package's fake states
// (newStates), so that the benchmarks read through a real cache.Store.
func newBenchStates(b *testing.B) *testkit.States {
	b.Helper()
	s := newStates(b)
	for bench, key := range map[string]string{benchActive: keyActive, benchBroke: keyBroke,
		benchSuspended: keySuspended, benchRevoked: keyRevoked, benchUnread: keyUnreadable} {
		e, err := s.Key(context.Background(), authz.APIKey(key).Hash())
		if err != nil {
			b.Fatal(err)
		}
		s.PutKey(authz.APIKey(bench).Hash(), e)
	}
	return s
}

func newBenchServer(b *testing.B) *envoy.Server {
	b.Helper()
	store, err := cache.New(cache.Config{Loader: newBenchStates(b), MaxBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	srv, _ := newEngineServer(b, envoy.EngineConfig{States: store}, nil)
	return srv
}

// benchRequest is a CheckRequest as Envoy sends it: a handful of ordinary
// headers besides the credential.
func benchRequest(surface, path string, creds map[string]string) *authv3.CheckRequest {
	headers := map[string]string{
		":authority": "api.footstep.example", ":method": "POST", ":path": path, ":scheme": "https",
		"accept": "application/json", "content-type": "application/json", "user-agent": "bench/1.0",
		"x-request-id": "6b1c1f2e-0d1c-4a7e-9a51-3f1f7d1e2a10", "x-forwarded-proto": "https",
	}
	for k, v := range creds {
		headers[k] = v
	}
	req := testkit.CheckRequest(path, headers, testkit.Surface(surface))
	http := req.Attributes.Request.Http
	http.Id, http.Method, http.Host = "6b1c1f2e", "POST", "api.footstep.example"
	return req
}

// rawHeaderRequest is the same request with encode_raw_headers: header_map.
func rawHeaderRequest(path, apiKey string) *authv3.CheckRequest {
	req := benchRequest("api", path, nil)
	http := req.Attributes.Request.Http
	http.HeaderMap = &corev3.HeaderMap{}
	for k, v := range http.Headers {
		http.HeaderMap.Headers = append(http.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	http.HeaderMap.Headers = append(http.HeaderMap.Headers, &corev3.HeaderValue{Key: authz.HeaderAPIKey, RawValue: []byte(apiKey)})
	http.Headers = nil
	return req
}

var benchCases = []struct {
	name string
	req  *authv3.CheckRequest
	want authz.Code
}{
	{"ok", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": benchActive}), authz.CodeOK},
	{"ok_mcp_bearer", benchRequest("mcp", "/mcp", map[string]string{"authorization": "Bearer " + benchActive}), authz.CodeOK},
	{"ok_header_map", rawHeaderRequest("/v1/chat", benchActive), authz.CodeOK},
	{"key_in_query", benchRequest("api", "/v1/chat?api_key="+benchActive, nil), authz.CodeKeyInQuery},
	{"invalid_key_format", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": "nope"}), authz.CodeInvalidKeyFormat},
	{"invalid_api_key", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": benchUnknown}), authz.CodeInvalidAPIKey},
	{"key_revoked", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": benchRevoked}), authz.CodeKeyRevoked},
	{"key_suspended", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": benchSuspended}), authz.CodeKeySuspended},
	{"insufficient_balance", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": benchBroke}), authz.CodeInsufficientBalance},
	{"authz_unavailable", benchRequest("api", "/v1/chat", map[string]string{"x-api-key": benchUnread}), authz.CodeUnavailable},
}

// checkCode returns the code a response answers with, for the warm-up check.
func checkCode(tb testing.TB, resp *authv3.CheckResponse) string {
	tb.Helper()
	if resp.GetOkResponse() != nil {
		if len(resp.GetOkResponse().GetHeaders()) > 0 && resp.GetOkResponse().GetHeaders()[0].GetHeader().GetKey() == envoy.HeaderShadow {
			return "shadow"
		}
		return authz.CodeOK.String()
	}
	return resp.GetStatus().GetMessage()
}

// BenchmarkCheck is the whole Check handler on a cache hit (after one warm-up
// call that fills the cache), for an allowed key and for each denial.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			srv := newBenchServer(b)
			warmCheck(b, srv, bc.req, bc.want)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := srv.Check(ctx, bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckParallel runs the allowed case from every P at once, to show
// contention in the cache and the response building.
func BenchmarkCheckParallel(b *testing.B) {
	ctx := context.Background()
	srv := newBenchServer(b)
	req := benchCases[0].req
	warmCheck(b, srv, req, authz.CodeOK)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := srv.Check(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCheckMarshal adds what gRPC does around the handler: decode the
// request and encode the response.
func BenchmarkCheckMarshal(b *testing.B) {
	ctx := context.Background()
	srv := newBenchServer(b)
	wire, err := proto.Marshal(benchCases[0].req)
	if err != nil {
		b.Fatal(err)
	}
	warmCheck(b, srv, benchCases[0].req, authz.CodeOK)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(wire, &req); err != nil {
			b.Fatal(err)
		}
		resp, _ := srv.Check(ctx, &req)
		if _, err := proto.Marshal(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// warmCheck fills the cache, waits until ristretto holds the entries and
// checks that the request gets the expected answer.
func warmCheck(b *testing.B, srv *envoy.Server, req *authv3.CheckRequest, want authz.Code) {
	b.Helper()
	var resp *authv3.CheckResponse
	for range 100 { // ristretto admits Sets asynchronously: repeat until hits
		resp, _ = srv.Check(context.Background(), req)
	}
	if got := checkCode(b, resp); got != want.String() {
		b.Fatalf("Check = %s; want %s", got, want)
	}
}
