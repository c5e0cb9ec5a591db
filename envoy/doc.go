// Package envoy serves Envoy ext_authz (work in progress).
package envoy
