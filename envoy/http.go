package envoy

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/footstep/authz/authz"
)

// HTTP request headers that forward-auth proxies use for the original
// request, and the header that names the surface.
const (
	HeaderForwardedURI = "X-Forwarded-Uri"
	HeaderOriginalURI  = "X-Original-Uri"
	HeaderSurface      = "X-Footstep-Surface"
)

// HTTP response headers of the HTTP service besides the identity headers.
const (
	// HeaderCode carries the code of a denial (the body's error.code), so
	// that a proxy that drops the body, such as nginx auth_request, can still
	// tell which denial to render (see DenialPath).
	HeaderCode = "x-footstep-authz-code"
	// HeaderEnvoyRemove lists the request headers Envoy's http_service removes
	// before the upstream, as OkHttpResponse.headers_to_remove does for gRPC.
	HeaderEnvoyRemove = "x-envoy-auth-headers-to-remove"
)

// DenialPath starts the path that renders a denial without deciding anything:
// DenialPath + "key_revoked" answers 403 with that code's JSON body and
// headers. nginx uses it from error_page, because auth_request keeps only the
// status of a denial. Anything after it that is not a denial code renders
// authz_unavailable: this path never allows.
const DenialPath = "/_footstep/denial/"

// MCPPathPrefix is the path (and the start of the paths) of the MCP surface
// when no X-Footstep-Surface header names the surface.
const MCPPathPrefix = "/mcp"

// HTTPHandler gives the Engine's decisions over HTTP, to Envoy's
// http_service and to forward-auth proxies (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth): 200 with the identity headers to allow,
// the documented status and JSON body to deny. It answers any method and path.
//
// The original request target, checked for keys in the query string, is
// X-Forwarded-Uri, else X-Original-Uri, else the request line without the
// path prefix (WithPathPrefix); a key in the query of any of them denies.
// The surface is the X-Footstep-Surface header (api or mcp) when present,
// else mcp when the original path is /mcp or under /mcp/, else api.
type HTTPHandler struct {
	engine *Engine
	log    *slog.Logger
	prefix string
}

// HTTPOption configures an HTTPHandler.
type HTTPOption func(*HTTPHandler)

// WithPathPrefix strips prefix from the request line's path before it is
// read as the original request target: set it to Envoy http_service's
// path_prefix. A trailing slash is ignored; "" (the default) strips nothing.
// Requests whose path does not start with it are read as they are.
func WithPathPrefix(prefix string) HTTPOption {
	return func(h *HTTPHandler) { h.prefix = strings.TrimRight(prefix, "/") }
}

// ErrPathPrefix is returned by CheckPathPrefix for a prefix that cannot be
// the start of a request path.
var ErrPathPrefix = errors.New("path prefix must be empty or start with / and hold no ? or #")

// CheckPathPrefix reports whether prefix can be given to WithPathPrefix, for
// validating configuration at start.
func CheckPathPrefix(prefix string) error {
	if prefix != "" && (prefix[0] != '/' || strings.ContainsAny(prefix, "?# \t")) {
		return ErrPathPrefix
	}
	return nil
}

// NewHTTPHandler returns an HTTPHandler answering from engine. A nil logger
// discards.
func NewHTTPHandler(engine *Engine, log *slog.Logger, opts ...HTTPOption) *HTTPHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &HTTPHandler{engine: engine, log: log}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ServeHTTP answers one authorization request.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, DenialPath) {
		renderDenial(w, r)
		return
	}
	req, known := h.request(r)
	if !known {
		h.engine.logUnknownSurface(r.Context(), h.log, HeaderSurface, strings.Join(r.Header.Values(HeaderSurface), ","))
	}
	res := h.engine.Authorize(r.Context(), req)
	h.engine.logResult(r.Context(), h.log, &res, r.Header.Get("X-Request-Id"))
	if res.Allowed() {
		a := allowanceOf(&res, httpHeaderNames(r.Header))
		a.writeHTTP(w)
		return
	}
	writeDenial(w, res.Code, res.Surface)
}

// request takes what the rules need from the HTTP request; known is false
// when the surface header names no surface.
func (h *HTTPHandler) request(r *http.Request) (req authz.Request, known bool) {
	uris := h.originalURIs(r)
	req.Surface, known = surfaceOf(r.Header.Values(HeaderSurface), uris[0])
	req.APIKeys = r.Header.Values(authz.HeaderAPIKey)
	req.Authorizations = r.Header.Values(authz.HeaderAuthorization)
	req.Path = uris[0]
	for _, u := range uris {
		// A key in the query of any candidate denies, so that no way of
		// passing the original URI hides one.
		if _, found := authz.QueryKey(u); found {
			req.Path = u
			break
		}
	}
	return req, known
}

// originalURIs returns every candidate for the original request target, the
// one that names it first: X-Forwarded-Uri, X-Original-Uri, then the request
// line without the path prefix. It is never empty.
func (h *HTTPHandler) originalURIs(r *http.Request) []string {
	var uris []string
	for _, name := range [...]string{HeaderForwardedURI, HeaderOriginalURI} {
		for _, v := range r.Header.Values(name) {
			if v != "" {
				uris = append(uris, v)
			}
		}
	}
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	if h.prefix != "" && strings.HasPrefix(target, h.prefix) {
		target = target[len(h.prefix):]
		if target == "" || target[0] == '?' {
			target = "/" + target
		}
	}
	return append(uris, target)
}

// surfaceOf picks the surface: the header when the proxy set it, else the
// original path. An unknown or repeated header value yields api, the surface
// that accepts fewer credentials, with known false.
func surfaceOf(header []string, uri string) (s authz.Surface, known bool) {
	switch len(header) {
	case 0:
	case 1:
		return authz.ParseSurface(strings.ToLower(strings.TrimSpace(header[0])))
	default:
		return authz.SurfaceAPI, false
	}
	if p := uriPath(uri); p == MCPPathPrefix || strings.HasPrefix(p, MCPPathPrefix+"/") {
		return authz.SurfaceMCP, true
	}
	return authz.SurfaceAPI, true
}

// uriPath returns the path of a request target in origin form or absolute
// form, without its query or fragment.
func uriPath(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if _, rest, ok := strings.Cut(uri, "://"); ok && !strings.HasPrefix(uri, "/") {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return "/"
	}
	return uri
}

// writeDenial answers with the code's status, headers and JSON body.
func writeDenial(w http.ResponseWriter, c authz.Code, s authz.Surface) {
	body := denialBody(c)
	hd := w.Header()
	for _, kv := range denialHeaders(c, s) {
		hd.Set(kv[0], kv[1])
	}
	hd.Set(HeaderCode, c.String())
	hd.Set("content-length", strconv.Itoa(len(body)))
	w.WriteHeader(c.Status())
	_, _ = w.Write([]byte(body))
}

// renderDenial answers DenialPath + code with that denial; anything that is
// not a denial code renders authz_unavailable.
func renderDenial(w http.ResponseWriter, r *http.Request) {
	code := authz.CodeUnavailable
	name := strings.TrimPrefix(r.URL.Path, DenialPath)
	for _, c := range authz.Codes {
		if c != authz.CodeOK && c.String() == name {
			code = c
		}
	}
	surface, _ := surfaceOf(r.Header.Values(HeaderSurface), "/")
	writeDenial(w, code, surface)
}
