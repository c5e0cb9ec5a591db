package envoy

import (
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/footstep/authz/authz"
)

// HeaderPrefix starts the name of every header that belongs to
// footstep-authz. No request header with this prefix that a client sent
// reaches the upstream: the allowed answer overwrites or removes each one.
const HeaderPrefix = "x-footstep-"

// ownHeaders are the names of this package's request headers that an
// allowed answer may not set. A transport that cannot see every header of
// the client's request (Envoy's http_service forwards only allowed_headers)
// removes them all the same.
var ownHeaders = []string{HeaderShadow, strings.ToLower(HeaderSurface), HeaderCode}

// allowance is what an allowed request carries upstream. allowanceOf is the
// one place that decides it; the gRPC and HTTP answers only render it.
type allowance struct {
	// set are request headers (name, value) set upstream, overwriting
	// whatever the client sent.
	set [][2]string
	// remove are request headers removed before the upstream, lowercase and
	// each once. None of them is in set, so the outcome does not depend on
	// the order in which the proxy applies the two.
	remove []string
	// meta is dynamic metadata (name, value) for access logs and the
	// rate-limit filter; the gRPC answer only.
	meta [][2]string
}

// allowanceOf returns what the allowed request r carries upstream. seen
// names the x-footstep-* headers of the client's request, in any case and
// possibly repeated: each one that is not set is removed.
func allowanceOf(r *Result, seen []string) allowance {
	var a allowance
	if r.Key.KeyID != "" {
		a.set = append(a.set, [2]string{HeaderAccountID, r.Key.AccountID}, [2]string{HeaderKeyID, r.Key.KeyID})
		a.meta = [][2]string{{MetadataAccountID, r.Key.AccountID}, {MetadataKeyID, r.Key.KeyID}}
	} else {
		// No identity to give: make sure none that a client sent survives.
		a.remove = append(a.remove, identityHeaders...)
	}
	if r.Code == authz.CodeOK {
		a.remove = append(a.remove, credentialHeaders(r.Surface)...)
	} else {
		// Shadow mode: allowed, reported, and the credential left for the
		// upstream that still authenticates on its own.
		a.set = append(a.set, [2]string{HeaderShadow, r.Code.String()})
	}
	for _, name := range seen {
		name = strings.ToLower(name)
		if !hasHeaderPrefix(name) || a.sets(name) || slices.Contains(a.remove, name) {
			continue
		}
		a.remove = append(a.remove, name)
	}
	return a
}

// sets reports whether the allowance sets the (lowercase) header name.
func (a *allowance) sets(name string) bool {
	for _, h := range a.set {
		if h[0] == name {
			return true
		}
	}
	return false
}

// hasHeaderPrefix reports whether a header name starts with HeaderPrefix,
// in any case.
func hasHeaderPrefix(name string) bool {
	return len(name) >= len(HeaderPrefix) && (name[0]|0x20) == 'x' && strings.EqualFold(name[:len(HeaderPrefix)], HeaderPrefix)
}

// checkHeaderNames returns the x-footstep-* header names of a CheckRequest,
// from both header encodings, in any case and possibly repeated; nil (and
// no allocation) when there are none, which is every ordinary request.
func checkHeaderNames(http *authv3.AttributeContext_HttpRequest) []string {
	var names []string
	for _, h := range http.GetHeaderMap().GetHeaders() {
		if hasHeaderPrefix(h.GetKey()) {
			names = append(names, h.GetKey())
		}
	}
	for name := range http.GetHeaders() {
		if hasHeaderPrefix(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names) // the map's order is random; answers should not be
	return names
}

// okAnswer holds every message of an allowed gRPC answer, so that rendering
// one costs a single allocation (and the metadata map) instead of one per
// message. The arrays fit every allowance allowanceOf builds.
type okAnswer struct {
	answer                  // CheckResponse is &resp, the same message; wire is set once the answer is kept
	keyID, accountID string // what a kept answer was built for
	surface          authz.Surface
	resp             authv3.CheckResponse
	oneof            authv3.CheckResponse_OkResponse
	ok               authv3.OkHttpResponse
	opts             [3]*corev3.HeaderValueOption
	opt              [3]corev3.HeaderValueOption
	hv               [3]corev3.HeaderValue
	meta             structpb.Struct
	vals             [2]structpb.Value
	strs             [2]structpb.Value_StringValue
}

// grpc renders the allowance as an OkHttpResponse: the headers to set
// (OVERWRITE_IF_EXISTS_OR_ADD), headers_to_remove and dynamic_metadata.
func (a *allowance) grpc() *okAnswer {
	o := &okAnswer{}
	headers := o.opts[:0]
	for i, h := range a.set {
		if i >= len(o.opt) {
			headers = append(headers, overwrite(h[0], h[1]))
			continue
		}
		o.hv[i] = corev3.HeaderValue{Key: h[0], Value: h[1]}
		o.opt[i] = corev3.HeaderValueOption{Header: &o.hv[i], AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
		headers = append(headers, &o.opt[i])
	}
	if len(headers) > 0 {
		o.ok.Headers = headers
	}
	o.ok.HeadersToRemove = a.remove
	if len(a.meta) > 0 {
		o.meta.Fields = make(map[string]*structpb.Value, len(a.meta))
		for i, m := range a.meta {
			v := structpb.NewStringValue(m[1])
			if i < len(o.vals) {
				o.strs[i].StringValue = m[1]
				o.vals[i].Kind = &o.strs[i]
				v = &o.vals[i]
			}
			o.meta.Fields[m[0]] = v
		}
		o.ok.DynamicMetadata = &o.meta
	}
	o.oneof.OkResponse = &o.ok
	o.resp.Status = okStatus
	o.resp.HttpResponse = &o.oneof
	o.CheckResponse = &o.resp
	return o
}

// writeHTTP renders the allowance as a 200 for Envoy's http_service and for
// forward-auth proxies.
//
// The headers to set are response headers. Envoy copies those named in its
// allowed_upstream_headers onto the upstream request, replacing the
// client's; nginx (auth_request_set + proxy_set_header), Caddy (copy_headers)
// and Traefik (authResponseHeaders) copy the ones their configuration
// names. The identity headers are always present, empty when none is known,
// so that a proxy copying them overwrites whatever the client sent.
//
// The headers to remove are listed in x-envoy-auth-headers-to-remove, which
// Envoy's http_service obeys and the forward-auth proxies ignore: there the
// proxy configuration removes the credential and the client's x-footstep-*
// headers itself (docs/http.md). Envoy sends this service only the headers
// in its allowed_headers, so a client's x-footstep-* header that it does
// not forward cannot be named here unless it is one of this package's own
// (ownHeaders, which the HTTP handler always passes as seen).
func (a *allowance) writeHTTP(w http.ResponseWriter) {
	hd := w.Header()
	for _, h := range a.set {
		hd.Set(h[0], h[1])
	}
	for _, name := range identityHeaders {
		if !a.sets(name) {
			hd.Set(name, "")
		}
	}
	if len(a.remove) > 0 {
		hd.Set(HeaderEnvoyRemove, strings.Join(a.remove, ","))
	}
	w.WriteHeader(http.StatusOK)
}

// httpHeaderNames returns the x-footstep-* header names of an HTTP
// authorization request, and this package's own names, which the proxy may
// have withheld; sorted, as the header map's order is random.
func httpHeaderNames(h http.Header) []string {
	names := slices.Clone(ownHeaders)
	for name := range h {
		if hasHeaderPrefix(name) {
			names = append(names, strings.ToLower(name))
		}
	}
	slices.Sort(names[len(ownHeaders):])
	return names
}
