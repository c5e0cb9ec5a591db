// Package envoy answers Envoy's external authorization: the ext_authz v3
// gRPC service (Server) and the same decisions over HTTP (HTTPHandler), for
// Envoy's http_service and forward-auth proxies.
//
// Both share one Engine, which takes the credential from a request, looks
// the key and account states up, and applies authz.Decide. Every denial,
// including a state that cannot be read, is an answer with the documented
// status and JSON body: the server fails closed and never answers with an
// empty or status-less response.
//
// An allowed request carries upstream what one allowance says, rendered for
// each transport: the identity headers set, the credential removed, and no
// other x-footstep-* header that the client sent. Log lines that requests
// cause (unreadable states, denials, unknown surfaces) are rate limited per
// kind and code, each carrying how many were held back.
//
// Server, HTTPHandler and Engine are safe for concurrent use; they hold no
// goroutines of their own. The caller owns the gRPC and HTTP servers.
package envoy
