package envoy_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
)

// fuzzSeeds are CheckRequests from the rules table: every outcome, both
// surfaces, both header encodings.
func fuzzSeeds() []*authv3.CheckRequest {
	var seeds []*authv3.CheckRequest
	for _, key := range []string{keyActive, keyBroke, keySuspended, keyRevoked, keyUnreadable, keyReadFails, keyAccountDown, keyUnknown, "nope", ""} {
		seeds = append(seeds,
			request("api", "/v1/x", map[string]string{"x-api-key": key}),
			request("mcp", "/mcp", map[string]string{"authorization": "Bearer " + key}),
			request("", "/v1/x?key="+key, map[string]string{"x-api-key": keyActive}),
			rawRequest("mcp", "/v1/x", [][2]string{{"x-api-key", key}, {"x-api-key", keyActive}}),
		)
	}
	seeds = append(seeds,
		request("api", "/v1/x", map[string]string{"x-api-key": keyActive, "X-Footstep-Key-Id": "k9", "x-footstep-authz-shadow": "ok"}),
		rawRequest("api", "/v1/x", [][2]string{{"x-api-key", keyActive}, {"x-FOOTSTEP-a", "1"}, {"x-footstep-a", "2"}}),
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
		if key := credentialOf(&req); key != keyActive {
			t.Fatalf("allowed with credential %q; only %q may pass", key, keyActive)
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
