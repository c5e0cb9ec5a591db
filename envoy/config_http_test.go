package envoy_test

// Wiring checks of an ext_authz filter that calls footstep-authz's HTTP service
// (envoy-http.yaml), run by checkExtAuthz for every http_service filter.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/footstep/authz/envoy"
)

// authzHTTPPort is footstep-authz's --http-addr default.
const authzHTTPPort = 9002

// checkHTTPService checks what footstep-authz's HTTP service needs of Envoy: the
// credential sent to it, the surface and original URI not chosen by the client, the
// identity headers copied upstream, the denial's headers passed to the client, and a
// plain HTTP/1.1 cluster on the HTTP port.
func checkHTTPService(name string, cfg *extauthzv3.ExtAuthz, clusters map[string]*clusterv3.Cluster) error {
	var errs []error
	hs := cfg.GetHttpService()
	sent := func(h string) bool {
		return matchesAny(h, cfg.GetAllowedHeaders(), hs.GetAuthorizationRequest().GetAllowedHeaders()) &&
			!matchesAny(h, cfg.GetDisallowedHeaders())
	}
	if !sent("x-api-key") {
		errs = append(errs, fmt.Errorf("ext_authz %q: allowed_headers must include x-api-key (the credential)", name))
	}
	for _, h := range []string{"x-footstep-surface", "x-forwarded-uri", "x-original-uri"} {
		if sent(h) {
			errs = append(errs, fmt.Errorf("ext_authz %q: allowed_headers must not include %s: the client would choose it", name, h))
		}
	}
	resp := hs.GetAuthorizationResponse()
	for _, h := range []string{envoy.HeaderAccountID, envoy.HeaderKeyID} {
		if !matchesAny(h, resp.GetAllowedUpstreamHeaders()) {
			errs = append(errs, fmt.Errorf("ext_authz %q: authorization_response.allowed_upstream_headers must include %s, or the client's value reaches the upstream", name, h))
		}
	}
	if l := resp.GetAllowedClientHeaders(); l != nil {
		for _, h := range []string{"content-type", "retry-after"} {
			if !matchesAny(h, l) {
				errs = append(errs, fmt.Errorf("ext_authz %q: authorization_response.allowed_client_headers must include %s", name, h))
			}
		}
	}
	if err := envoy.CheckPathPrefix(hs.GetPathPrefix()); err != nil {
		errs = append(errs, fmt.Errorf("ext_authz %q: path_prefix %q: %w", name, hs.GetPathPrefix(), err))
	}
	if c := clusters[hs.GetServerUri().GetCluster()]; c != nil {
		errs = append(errs, checkAuthzHTTPCluster(c))
	}
	return errors.Join(errs...)
}

// checkAuthzHTTPCluster checks that the cluster speaks HTTP/1.1 (the HTTP service
// has no HTTP/2 without TLS) to the HTTP port.
func checkAuthzHTTPCluster(c *clusterv3.Cluster) error {
	var errs []error
	opts := &httpv3.HttpProtocolOptions{}
	if a := c.GetTypedExtensionProtocolOptions()[protocolOptionsKey]; a != nil && a.UnmarshalTo(opts) == nil &&
		opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
		errs = append(errs, fmt.Errorf("cluster %q: footstep-authz's HTTP service speaks HTTP/1.1; drop http2_protocol_options", c.GetName()))
	}
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			if p := lb.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); p != authzHTTPPort {
				errs = append(errs, fmt.Errorf("cluster %q: endpoint on port %d, want the HTTP port %d", c.GetName(), p, authzHTTPPort))
			}
		}
	}
	return errors.Join(errs...)
}

// matchesAny reports whether a lowercase header name matches a pattern of any list,
// as Envoy's string matchers do.
func matchesAny(name string, lists ...*matcherv3.ListStringMatcher) bool {
	for _, l := range lists {
		for _, m := range l.GetPatterns() {
			if matches(m, name) {
				return true
			}
		}
	}
	return false
}

func matches(m *matcherv3.StringMatcher, s string) bool {
	if m.GetIgnoreCase() {
		s = strings.ToLower(s)
	}
	fold := func(p string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(p)
		}
		return p
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return s == fold(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(s, fold(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(s, fold(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(s, fold(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		return err == nil && re.MatchString(s)
	}
	return false
}

// TestEnvoyHTTPConfigRejects proves each http_service check on mutations of
// envoy-http.yaml.
func TestEnvoyHTTPConfigRejects(t *testing.T) {
	checkRejects(t, "envoy-http.yaml", []mutation{
		{"fail open", "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow"},
		{"missing cluster", "cluster: footstep_authz_http,", "cluster: nowhere,", `cluster "nowhere"`},
		{"no timeout", ", timeout: 0.25s }", " }", "Timeout"},
		{"no credential sent", "                - exact: x-api-key\n", "", "x-api-key"},
		{"credential disallowed", "              allowed_headers:", "              disallowed_headers: { patterns: [ { prefix: x-api } ] }\n              allowed_headers:", "x-api-key"},
		{"client picks the surface", "- exact: x-request-id", "- prefix: x-footstep-", "x-footstep-surface"},
		{"client picks the URI", "- exact: x-request-id", "- safe_regex: { regex: 'x-(forwarded|original)-uri' }", "x-forwarded-uri"},
		{"identity not copied upstream", "                    - exact: x-footstep-key-id\n", "", "x-footstep-key-id"},
		{"content-type not passed to the client", "                    - exact: content-type\n", "", "content-type"},
		{"bad path prefix", "path_prefix: /authz", "path_prefix: authz", "path_prefix"},
		{"gRPC port", "port_value: 9002", "port_value: 9001", "port 9001"},
		{"HTTP/2 cluster", "    connect_timeout: 0.25s\n    load_assignment:\n      cluster_name: footstep_authz_http",
			"    connect_timeout: 0.25s\n    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: { http2_protocol_options: {} }\n    load_assignment:\n      cluster_name: footstep_authz_http", "HTTP/1.1"},
	})
}
