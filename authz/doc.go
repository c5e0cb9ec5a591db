// Package authz holds the Footstep API key rules: how a credential is taken
// from a request, how a key is hashed, which states a key and an account can
// be in, and Decide, which maps them to the documented status, code and
// message.
//
// It uses only the standard library and does no I/O: callers look states up
// (package cache) and hand them in. Every function is safe for concurrent use;
// there is nothing to start or stop.
package authz
