package testkit

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// checkRequestID is the request id of every CheckRequest built here.
const checkRequestID = "req-1"

// CheckOption changes a CheckRequest that CheckRequest builds.
type CheckOption func(*authv3.CheckRequest)

// Surface sets the route's surface context extension ("api" or "mcp"), as
// the per-route ext_authz configuration does; empty leaves it unset.
func Surface(surface string) CheckOption {
	return ContextExtension("surface", surface)
}

// ContextExtension sets a route's context extension; an empty value leaves
// it unset.
func ContextExtension(name, value string) CheckOption {
	return func(r *authv3.CheckRequest) {
		if value == "" {
			return
		}
		if r.Attributes.ContextExtensions == nil {
			r.Attributes.ContextExtensions = map[string]string{}
		}
		r.Attributes.ContextExtensions[name] = value
	}
}

// CheckRequest builds what Envoy's ext_authz filter sends for a GET of path
// (query string included) with headers (lower-case names).
func CheckRequest(path string, headers map[string]string, opts ...CheckOption) *authv3.CheckRequest {
	r := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: checkRequestID, Method: "GET", Path: path, Headers: headers,
		}},
	}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// KeyCheck is CheckRequest for GET /v1/things with key in x-api-key.
func KeyCheck(key string) *authv3.CheckRequest {
	return CheckRequest("/v1/things", map[string]string{"x-api-key": key})
}
