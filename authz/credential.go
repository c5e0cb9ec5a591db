package authz

import "strings"

// Surface is the product surface a request arrives on. It decides which
// headers may carry the key.
type Surface uint8

// The surfaces. The zero value is SurfaceAPI, the stricter one.
const (
	SurfaceAPI Surface = iota // x-api-key only
	SurfaceMCP                // x-api-key, or authorization: Bearer
)

// ParseSurface maps the route's "surface" context extension to a Surface.
// An empty name is SurfaceAPI. An unknown name also yields SurfaceAPI, which
// accepts fewer credentials, with ok false so the caller can report it.
func ParseSurface(name string) (s Surface, ok bool) {
	switch name {
	case "", "api":
		return SurfaceAPI, true
	case "mcp":
		return SurfaceMCP, true
	}
	return SurfaceAPI, false
}

// String returns "api" or "mcp".
func (s Surface) String() string {
	if s == SurfaceMCP {
		return "mcp"
	}
	return "api"
}

// Header names, lowercase as Envoy sends them.
const (
	HeaderAPIKey        = "x-api-key"
	HeaderAuthorization = "authorization"
)

// Request is what the rules need of an HTTP request. Each header slice holds
// every value received for that header, one entry per header line; a value
// that a proxy joined with commas stays one entry and is malformed.
type Request struct {
	Surface        Surface
	APIKeys        []string // values of x-api-key
	Authorizations []string // values of authorization
	Path           string   // the request target: path and query string
}

// Credential is the result of taking the key from a request.
type Credential struct {
	// Code is CodeOK when Key is usable, otherwise the denial:
	// CodeKeyInQuery or CodeInvalidKeyFormat.
	Code Code
	// Key is the well-formed key from the headers; empty unless Code is CodeOK.
	Key APIKey
	// Header is the header that carried Key, "x-api-key" or "authorization".
	Header string
	// QueryKey is a well-formed key found in the query string, so that its
	// owner can be told it leaked. It never authenticates.
	QueryKey APIKey
}

// Extract takes the credential from a request. A key anywhere in the query
// string denies the request even when a valid header is present. Otherwise
// x-api-key is used when present, on every surface; on the MCP surface an
// authorization header with the Bearer scheme is used when x-api-key is not
// present. Exactly one value is allowed; surrounding spaces and tabs are
// ignored, anything else that is not the key format is malformed.
func Extract(r Request) Credential {
	if leaked, found := QueryKey(r.Path); found {
		return Credential{Code: CodeKeyInQuery, QueryKey: leaked}
	}
	switch {
	case len(r.APIKeys) > 0:
		return fromHeader(r.APIKeys, HeaderAPIKey, trimOWS)
	case r.Surface == SurfaceMCP && len(r.Authorizations) > 0:
		return fromHeader(r.Authorizations, HeaderAuthorization, bearerToken)
	}
	return Credential{Code: CodeInvalidKeyFormat}
}

func fromHeader(values []string, header string, token func(string) string) Credential {
	if len(values) != 1 {
		return Credential{Code: CodeInvalidKeyFormat}
	}
	key := token(values[0])
	if !validKey(key) {
		return Credential{Code: CodeInvalidKeyFormat}
	}
	return Credential{Code: CodeOK, Key: APIKey(key), Header: header}
}

// bearerToken returns the token of a "Bearer <token>" value (scheme matched
// case-insensitively), or "" for any other scheme.
func bearerToken(v string) string {
	v = trimOWS(v)
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return ""
	}
	rest := v[len(scheme):]
	if rest[0] != ' ' && rest[0] != '\t' {
		return ""
	}
	return trimOWS(rest)
}

// trimOWS removes HTTP optional white space (spaces and tabs) at both ends.
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}
