package envoy

import (
	"log/slog"
	"net/http"

	"github.com/footstep/authz/authz"
)

// HTTP request headers that forward-auth proxies use for the original
// request, and the header that names the surface.
const (
	HeaderForwardedURI = "X-Forwarded-Uri"
	HeaderOriginalURI  = "X-Original-Uri"
	HeaderSurface      = "X-Footstep-Surface"
)

// HTTPHandler gives the Engine's decisions over HTTP: 200 with the identity
// headers to allow, the documented status and JSON body to deny.
type HTTPHandler struct {
	engine *Engine
	log    *slog.Logger
}

// NewHTTPHandler returns an HTTPHandler answering from engine.
func NewHTTPHandler(engine *Engine, log *slog.Logger) *HTTPHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &HTTPHandler{engine: engine, log: log}
}

// ServeHTTP answers any method and path.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	surface, _ := authz.ParseSurface(r.Header.Get(HeaderSurface))
	req := authz.Request{
		Surface:        surface,
		APIKeys:        r.Header.Values(authz.HeaderAPIKey),
		Authorizations: r.Header.Values(authz.HeaderAuthorization),
		Path:           originalURI(r),
	}
	res := h.engine.Authorize(r.Context(), req)
	if res.Allowed() {
		// Set even when empty, so that a proxy copying these headers
		// upstream overwrites whatever the client sent.
		w.Header().Set(HeaderAccountID, res.Key.AccountID)
		w.Header().Set(HeaderKeyID, res.Key.KeyID)
		if res.Code != authz.CodeOK {
			w.Header().Set(HeaderShadow, res.Code.String())
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, kv := range denialHeaders(res.Code, res.Surface) {
		w.Header().Set(kv[0], kv[1])
	}
	w.WriteHeader(res.Code.Status())
	_, _ = w.Write([]byte(denialBody(res.Code)))
}

// originalURI returns the request target whose query string is checked for
// keys: the first of X-Forwarded-Uri, X-Original-Uri and the request line
// that carries a key, so that no way of passing the original URI hides one,
// or else the first that is present.
func originalURI(r *http.Request) string {
	candidates := [...]string{r.Header.Get(HeaderForwardedURI), r.Header.Get(HeaderOriginalURI), r.URL.RequestURI()}
	for _, c := range candidates {
		if _, found := authz.QueryKey(c); found {
			return c
		}
	}
	for _, c := range candidates {
		if c != "" {
			return c
		}
	}
	return "/"
}
