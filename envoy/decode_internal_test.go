package envoy

import (
	"maps"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// envoyRequest is a CheckRequest as Envoy sends it for an API call: the
// peers, every header of the request, the context extensions.
func envoyRequest(headers map[string]string) *authv3.CheckRequest {
	all := map[string]string{
		":authority": "api.footstep.example", ":method": "POST", ":path": "/v1/chat/completions", ":scheme": "https",
		"accept": "application/json", "content-type": "application/json", "user-agent": "client/1.0",
		"x-request-id": "6b1c1f2e-0d1c-4a7e-9a51-3f1f7d1e2a10", "x-forwarded-proto": "https",
	}
	maps.Copy(all, headers)
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}},
		ContextExtensions: map[string]string{"surface": "api", "route": "chat"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "6b1c1f2e-0d1c-4a7e-9a51-3f1f7d1e2a10", Method: "POST", Path: "/v1/chat/completions?stream=true", Host: "api.footstep.example",
			Scheme: "https", Protocol: "HTTP/2", Size: 512, Headers: all,
		}},
	}}
}

// rawEnvoyRequest is the same with encode_raw_headers: header_map, repeated
// names allowed, values as raw bytes.
func rawEnvoyRequest(headers [][2]string) *authv3.CheckRequest {
	req := envoyRequest(nil)
	h := req.Attributes.Request.Http
	var hm []*corev3.HeaderValue
	for k, v := range h.Headers {
		hm = append(hm, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	for _, kv := range headers {
		hm = append(hm, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	h.Headers, h.HeaderMap = nil, &corev3.HeaderMap{Headers: hm}
	return req
}

// trimmed is what decodeCheck should keep of a fully decoded request, built
// from the generated getters, independently of decodeCheck.
func trimmed(full *authv3.CheckRequest) *authv3.CheckRequest {
	out := new(authv3.CheckRequest)
	a := full.GetAttributes()
	if a == nil {
		return out
	}
	out.Attributes = new(authv3.AttributeContext)
	if v, ok := a.GetContextExtensions()["surface"]; ok {
		out.Attributes.ContextExtensions = map[string]string{"surface": v}
	}
	r := a.GetRequest()
	if r == nil {
		return out
	}
	out.Attributes.Request = new(authv3.AttributeContext_Request)
	h := r.GetHttp()
	if h == nil {
		return out
	}
	kept := func(name string) bool { return name == "x-api-key" || name == "authorization" || hasHeaderPrefix(name) }
	oh := &authv3.AttributeContext_HttpRequest{Id: h.GetId(), Path: h.GetPath(), Query: h.GetQuery()}
	for k, v := range h.GetHeaders() {
		if kept(k) {
			if oh.Headers == nil {
				oh.Headers = map[string]string{}
			}
			oh.Headers[k] = v
		}
	}
	if hm := h.GetHeaderMap(); hm != nil {
		oh.HeaderMap = new(corev3.HeaderMap)
		for _, hv := range hm.GetHeaders() {
			if kept(hv.GetKey()) {
				oh.HeaderMap.Headers = append(oh.HeaderMap.Headers, &corev3.HeaderValue{Key: hv.GetKey(), Value: hv.GetValue(), RawValue: hv.GetRawValue()})
			}
		}
	}
	out.Attributes.Request.Http = oh
	return out
}

// decodeSeeds are requests in the forms decodeCheck must read as
// proto.Unmarshal does: both header encodings, credentials in any of them,
// x-footstep-* headers in any case, a request split in two messages that
// merge, a map key given twice.
func decodeSeeds(t testing.TB) [][]byte {
	t.Helper()
	var seeds [][]byte
	add := func(b []byte) { seeds = append(seeds, b) }
	for _, req := range []*authv3.CheckRequest{
		{},
		{Attributes: &authv3.AttributeContext{}},
		{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}},
		envoyRequest(map[string]string{"x-api-key": "sk_live_abc"}),
		envoyRequest(map[string]string{"authorization": "Bearer sk_live_abc", "X-Footstep-Key-Id": "k9", "x-footstep-authz-shadow": "ok"}),
		rawEnvoyRequest([][2]string{{"x-api-key", "sk_live_abc"}, {"x-api-key", "sk_live_def"}, {"x-FOOTSTEP-a", "1"}}),
		{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Path: "/v1/x", Query: "key=sk_live_abc", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: "x-api-key", Value: "sk_live_abc"}, {Key: "authorization", Value: "Bearer x", RawValue: []byte{}}}},
		}}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		add(b)
	}
	// Two messages concatenated merge: the second's path, the union of the
	// headers, the second's value for a key given twice.
	first, _ := proto.Marshal(envoyRequest(map[string]string{"x-api-key": "sk_live_first", "authorization": "Bearer a"}))
	second, _ := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{"surface": "mcp"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Path: "/mcp", Headers: map[string]string{"x-api-key": "sk_live_second"}}}}})
	add(append(append([]byte{}, first...), second...))
	// A known field sent with another wire type is an unknown field.
	add(protowire.AppendVarint(protowire.AppendTag(nil, fieldCheckAttributes, protowire.VarintType), 7))
	// A header skipped whose value is not UTF-8 (Envoy's headers map can
	// carry one; header_map's raw_value exists for that reason).
	add(mustMarshalInvalid(t))
	return seeds
}

// mustMarshalInvalid encodes a request whose user-agent header value is not
// UTF-8, which proto.Marshal refuses to write.
func mustMarshalInvalid(t testing.TB) []byte {
	t.Helper()
	http := append(wireMsg(fieldHTTPHeaders, wireEntry("user-agent", "bad\xff")), wireMsg(fieldHTTPHeaders, wireEntry("x-api-key", "sk_live_abc"))...)
	return wireMsg(fieldCheckAttributes, wireMsg(fieldAttrRequest, wireMsg(fieldRequestHTTP, http)))
}

// wireEntry is a map<string, string> entry on the wire.
func wireEntry(k, v string) []byte {
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), k)
	return protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), v)
}

// wireMsg is a length-delimited field on the wire.
func wireMsg(num protowire.Number, body []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
}

// FuzzDecodeCheck: whatever the bytes, decodeCheck refuses only what
// proto.Unmarshal refuses too, and when proto.Unmarshal reads them,
// decodeCheck keeps exactly the fields the service reads.
func FuzzDecodeCheck(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var full, lean authv3.CheckRequest
		fullErr := proto.Unmarshal(b, &full)
		leanErr := decodeCheck(b, &lean)
		switch {
		case leanErr != nil && fullErr == nil:
			t.Fatalf("decodeCheck refused what proto.Unmarshal reads: %v", leanErr)
		case fullErr != nil:
			return
		}
		if want := trimmed(&full); !proto.Equal(&lean, want) {
			t.Fatalf("decodeCheck kept %v; want %v", &lean, want)
		}
	})
}

// TestDecodeCheckRefuses: malformed wire data, and a string it keeps that is
// not UTF-8, are errors, as they are for proto.Unmarshal; a header it skips
// may hold anything.
func TestDecodeCheckRefuses(t *testing.T) {
	good, err := proto.Marshal(envoyRequest(map[string]string{"x-api-key": "sk_live_abc"}))
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"truncated":         good[:len(good)-3],
		"length past end":   {0x0a, 0x7f, 0x01},
		"field number zero": {0x02, 0x00},
		"kept header not UTF-8": wireMsg(fieldCheckAttributes, wireMsg(fieldAttrRequest, wireMsg(fieldRequestHTTP,
			wireMsg(fieldHTTPHeaders, wireEntry("x-api-key", "sk_live_\xff"))))),
		"path not UTF-8": wireMsg(fieldCheckAttributes, wireMsg(fieldAttrRequest, wireMsg(fieldRequestHTTP,
			protowire.AppendString(protowire.AppendTag(nil, fieldHTTPPath, protowire.BytesType), "/v1/\xff")))),
	}
	for name, b := range bad {
		var full, lean authv3.CheckRequest
		if err := decodeCheck(b, &lean); err == nil {
			t.Errorf("%s: decodeCheck = nil; want an error", name)
		}
		if proto.Unmarshal(b, &full) == nil {
			t.Errorf("%s: proto.Unmarshal reads it; the case is wrong", name)
		}
	}
	var lean authv3.CheckRequest
	if err := decodeCheck(mustMarshalInvalid(t), &lean); err != nil {
		t.Errorf("a skipped header that is not UTF-8: %v; want it skipped", err)
	}
	if got := lean.GetAttributes().GetRequest().GetHttp().GetHeaders(); len(got) != 1 || got["x-api-key"] != "sk_live_abc" {
		t.Errorf("headers kept = %v; want the x-api-key only", got)
	}
}

// TestDecodeCheckAllocations: reading Envoy's request for an API call costs
// a few allocations, not one per header.
func TestDecodeCheckAllocations(t *testing.T) {
	b, err := proto.Marshal(envoyRequest(map[string]string{"x-api-key": "sk_live_abc"}))
	if err != nil {
		t.Fatal(err)
	}
	lean := testing.AllocsPerRun(100, func() {
		var req authv3.CheckRequest
		_ = decodeCheck(b, &req)
	})
	full := testing.AllocsPerRun(100, func() {
		var req authv3.CheckRequest
		_ = proto.Unmarshal(b, &req)
	})
	if lean > full/2 {
		t.Errorf("decodeCheck allocates %v times, proto.Unmarshal %v; want at most half", lean, full)
	}
	t.Logf("allocations: decodeCheck %v, proto.Unmarshal %v", lean, full)
}

// BenchmarkDecodeCheck reads Envoy's request for an API call with
// decodeCheck and, as the baseline of the same run, with proto.Unmarshal.
func BenchmarkDecodeCheck(b *testing.B) {
	wire, err := proto.Marshal(envoyRequest(map[string]string{"x-api-key": "sk_live_abc"}))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decodeCheck", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req authv3.CheckRequest
			if err := decodeCheck(wire, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req authv3.CheckRequest
			if err := proto.Unmarshal(wire, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
