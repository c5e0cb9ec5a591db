package envoy

import (
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/footstep/authz/authz"
)

// surfaceExtension is the context extension that names the surface.
const surfaceExtension = "surface"

// requestFromCheck takes what the rules need from a CheckRequest. Any part may
// be absent: a missing header reads as no credential, which denies.
func requestFromCheck(req *authv3.CheckRequest) (authz.Request, bool) {
	attrs := req.GetAttributes()
	surface, known := authz.ParseSurface(attrs.GetContextExtensions()[surfaceExtension])
	http := attrs.GetRequest().GetHttp()
	r := authz.Request{Surface: surface, Path: requestTarget(http)}
	if hm := http.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		// Envoy fills header_map instead of headers with encode_raw_headers,
		// one entry per header line.
		// Only the credential headers' values are converted to strings.
		for _, h := range hm {
			switch h.GetKey() {
			case authz.HeaderAPIKey:
				r.APIKeys = append(r.APIKeys, headerValue(h.GetValue(), h.GetRawValue()))
			case authz.HeaderAuthorization:
				r.Authorizations = append(r.Authorizations, headerValue(h.GetValue(), h.GetRawValue()))
			}
		}
		return r, known
	}
	headers := http.GetHeaders()
	if v, ok := headers[authz.HeaderAPIKey]; ok {
		r.APIKeys = []string{v}
	}
	if v, ok := headers[authz.HeaderAuthorization]; ok {
		r.Authorizations = []string{v}
	}
	return r, known
}

func headerValue(value string, raw []byte) string {
	if len(raw) > 0 {
		return string(raw)
	}
	return value
}

// requestTarget returns the path with its query string. Envoy puts the query
// in path; the separate query field is used when path has none.
func requestTarget(http *authv3.AttributeContext_HttpRequest) string {
	path, query := http.GetPath(), http.GetQuery()
	if query == "" || strings.IndexByte(path, '?') >= 0 {
		return path
	}
	return path + "?" + query
}
