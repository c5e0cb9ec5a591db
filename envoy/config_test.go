package envoy_test

// Validation of every Envoy bootstrap shipped in the repository: envoy/*.yaml and
// the bootstraps under k8s/ (plain files or embedded in a ConfigMap). No Envoy binary
// runs here, so each config goes through what Envoy itself checks first: the strict
// protobuf decoding of the v3 API and the protoc-gen-validate rules (ValidateAll), on
// the bootstrap and on every typed_config it carries. Then the wiring that Envoy would
// accept but that would break footstep-authz: missing clusters, ext_authz after the
// router, a fail-open filter, an HTTP/1 gRPC cluster, pings the server refuses.

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/footstep/authz/internal/testkit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Extensions a config in this repository may name in a typed_config: the
	// registration makes their Any resolvable. Add the package of any new one.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

const (
	// authzGRPCPort is footstep-authz's --grpc-addr default.
	authzGRPCPort = 9001
	// serverKeepaliveMinTime is the server's keepalive enforcement MinTime: Envoy
	// must not ping more often.
	serverKeepaliveMinTime = 10 * time.Second
	// mcpPrefix starts the path of the routes that must carry surface=mcp.
	mcpPrefix = "/mcp"
	// protocolOptionsKey is where a cluster's HTTP protocol options live.
	protocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// TestEnvoyConfigs validates every Envoy bootstrap in the repository.
func TestEnvoyConfigs(t *testing.T) {
	configs := envoyConfigs(t)
	var fromK8s int
	for name, data := range configs {
		if strings.HasPrefix(name, "../k8s/") {
			fromK8s++
		}
		t.Run(name, func(t *testing.T) {
			if err := checkConfig(data); err != nil {
				t.Errorf("%s:\n%v", name, err)
			}
		})
	}
	if _, ok := configs["envoy.yaml"]; !ok {
		t.Errorf("envoy/envoy.yaml not found among %d configs", len(configs))
	}
	if fromK8s == 0 {
		t.Errorf("no Envoy bootstrap found under k8s/ (the sidecar example has one)")
	}
}

// TestEnvoyConfigRejects proves each check: a mutation of envoy.yaml that Envoy or
// footstep-authz would not survive must fail with the expected message.
func TestEnvoyConfigRejects(t *testing.T) {
	checkRejects(t, "envoy.yaml", []mutation{
		{"unknown field", "stat_prefix: ingress_http", "stat_prefix: ingress_http\n          no_such_field: 1", "unknown field"},
		{"unknown typed_config type", "ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuthzz\n", "ExtAuthzz"},
		{"bootstrap rule broken", "connect_timeout: 0.25s", "connect_timeout: -1s", "ConnectTimeout"},
		{"rule broken inside a typed_config", "stat_prefix: ingress_http", `stat_prefix: ""`, "StatPrefix"},
		{"rule broken two typed_configs deep", "code: ServiceUnavailable", "code: 99", "Code"},
		{"route to a missing cluster", "route: { cluster: upstream }\n          http_filters", "route: { cluster: upstraem }\n          http_filters", `cluster "upstraem"`},
		{"ext_authz to a missing cluster", "cluster_name: footstep_authz }", "cluster_name: footstep-authz }", `cluster "footstep-authz"`},
		{"authz cluster without HTTP/2", http2Block, "          http_protocol_options: {}\n", "HTTP/2"},
		{"authz cluster without protocol options", "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:", "    typed_extension_protocol_options:\n      unused.HttpProtocolOptions:", "HTTP/2"},
		{"authz cluster on the wrong port", "port_value: 9001", "port_value: 9002", "port 9002"},
		{"ext_authz after the router", extAuthzBlock + routerBlock, routerBlock + extAuthzBlock, "before the router"},
		{"router not last", extAuthzBlock + routerBlock, routerBlock + extAuthzBlock, "last filter"},
		{"no ext_authz", extAuthzBlock, "", "no ext_authz"},
		{"MCP route without surface", "surface: mcp", "surface: api", "surface"},
		{"MCP per-route config under another name", "                  envoy.filters.http.ext_authz:", "                  ext_authz:", "surface"},
		{"no MCP route", "match: { prefix: /mcp }", "match: { prefix: /mpc }", "no route"},
		{"fail open", "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow"},
		{"no timeout", "timeout: 0.25s\n", "\n", "timeout"},
		{"pings too often", "interval: 30s", "interval: 5s", "keepalive"},
		{"no keepalive", http2Block, "          http2_protocol_options: {}\n", "keepalive"},
		{"no keepalive timeout", "              timeout: 5s\n", "", "KeepaliveSettings.Timeout"},
		{"API version not V3", "transport_api_version: V3", "transport_api_version: AUTO", "V3"},
		{"no admin", "admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: 9901 }\n", "", "admin"},
	})
}

// mutation is a mistake made to a shipped config: old replaced once by new,
// after which checkConfig must fail with an error containing wantErr.
type mutation struct{ name, old, new, wantErr string }

// checkRejects reads file, which checkConfig must pass, and proves in a
// subtest each that every mutation of it fails with the expected message.
func checkRejects(t *testing.T, file string, mutations []mutation) {
	t.Helper()
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkConfig(good); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			bad := testkit.ReplaceOnce(t, file, string(good), m.old, m.new)
			testkit.WantError(t, "checkConfig("+m.name+")", checkConfig([]byte(bad)), m.wantErr)
		})
	}
}

// TestEnvoyConfigHTTPService checks that an ext_authz filter using http_service is
// spared the gRPC-only checks and held to the HTTP ones instead: envoy.yaml with a
// bare http_service pointed at the gRPC cluster must fail only on those. The shipped
// http_service config, envoy-http.yaml, is checked by TestEnvoyHTTPConfigRejects.
func TestEnvoyConfigHTTPService(t *testing.T) {
	good, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	grpc := "              grpc_service:\n                envoy_grpc: { cluster_name: footstep_authz }\n                # The server answers from memory in microseconds; 250 ms covers a cache miss read from NATS.\n                timeout: 0.25s\n"
	http := "              http_service:\n                server_uri: { uri: \"http://127.0.0.1:9002\", cluster: footstep_authz, timeout: 0.25s }\n"
	err = checkConfig([]byte(testkit.ReplaceOnce(t, "envoy.yaml", string(good), grpc, http)))
	for _, want := range []string{"x-api-key", "allowed_upstream_headers", "HTTP/1.1", "port 9001"} {
		testkit.WantError(t, "bare http_service: checkConfig", err, want)
	}
	for _, grpcOnly := range []string{"keepalive", "surface", "grpc_service"} {
		if err != nil && strings.Contains(err.Error(), grpcOnly) {
			t.Errorf("bare http_service: checkConfig = %v; want no gRPC-only error (%q)", err, grpcOnly)
		}
	}
}

// http2Block is the authz cluster's HTTP/2 options in envoy.yaml.
const http2Block = `          http2_protocol_options:
            # The server enforces keepalive MinTime 10s: pinging more often gets the
            # connection closed with GOAWAY too_many_pings.
            connection_keepalive:
              interval: 30s
              timeout: 5s
`

// extAuthzBlock and routerBlock are the two HTTP filters of envoy.yaml.
const (
	extAuthzBlock = `          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              # Fail closed: if footstep-authz cannot be reached or answers late, deny.
              failure_mode_allow: false
              # ...with 503 rather than Envoy's default 403: the client is not at fault.
              status_on_error: { code: ServiceUnavailable }
              grpc_service:
                envoy_grpc: { cluster_name: footstep_authz }
                # The server answers from memory in microseconds; 250 ms covers a cache miss read from NATS.
                timeout: 0.25s
`
	routerBlock = `          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
)

// envoyConfigs returns every Envoy bootstrap in the repository by path (relative to
// this package).
func envoyConfigs(tb testing.TB) map[string][]byte {
	tb.Helper()
	configs := map[string][]byte{}
	paths, err := filepath.Glob("*.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		configs[p] = data // every YAML here must be a bootstrap
	}
	err = filepath.WalkDir("../k8s", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for name, cfg := range bootstrapsIn(data) {
			configs[p+name] = cfg
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return configs
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// bootstrapsIn finds the Envoy bootstraps in a (multi-document) YAML file: the
// documents that are one, and the ConfigMap data entries that are one.
func bootstrapsIn(data []byte) map[string][]byte {
	found := map[string][]byte{}
	for i, doc := range docSeparator.Split(string(data), -1) {
		var obj map[string]any
		if yaml.Unmarshal([]byte(doc), &obj) != nil || obj == nil {
			continue
		}
		if isBootstrap(obj) {
			found[fmt.Sprintf("#%d", i)] = []byte(doc)
			continue
		}
		if obj["kind"] != "ConfigMap" {
			continue
		}
		entries, _ := obj["data"].(map[string]any)
		for key, v := range entries {
			s, _ := v.(string)
			var inner map[string]any
			if yaml.Unmarshal([]byte(s), &inner) == nil && isBootstrap(inner) {
				found[fmt.Sprintf("#%d:%s", i, key)] = []byte(s)
			}
		}
	}
	return found
}

func isBootstrap(obj map[string]any) bool {
	_, ok := obj["static_resources"]
	return ok
}

// checkConfig decodes a bootstrap strictly, validates it and everything inside, and
// checks its wiring. All problems are reported together.
func checkConfig(data []byte) error {
	b, err := decodeBootstrap(data)
	if err != nil {
		return err
	}
	if err := validateDeep(b); err != nil {
		return err
	}
	return checkWiring(b)
}

func decodeBootstrap(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil {
		return nil, fmt.Errorf("decode bootstrap: %w", err)
	}
	return b, nil
}

type validator interface{ ValidateAll() error }

// validateDeep runs ValidateAll on m and on every message packed in an Any inside
// it, at any depth: Envoy's generated validation stops at an Any.
func validateDeep(m proto.Message) error {
	var errs []error
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().FullName(), err))
		}
	}
	err := eachAny(m.ProtoReflect(), func(inner proto.Message) error {
		return validateDeep(inner)
	})
	return errors.Join(append(errs, err)...)
}

// eachAny calls fn with the unpacked content of every Any directly reachable from m
// (not inside another Any).
func eachAny(m protoreflect.Message, fn func(proto.Message) error) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("unpack %s: %w", a.GetTypeUrl(), err)
		}
		return fn(inner)
	}
	var errs []error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				errs = append(errs, eachAny(v.List().Get(i).Message(), fn))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				errs = append(errs, eachAny(mv.Message(), fn))
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			errs = append(errs, eachAny(v.Message(), fn))
		}
		return true
	})
	return errors.Join(errs...)
}

// allMessages returns m and every message inside it, Any contents included.
func allMessages(m proto.Message) []proto.Message {
	out := []proto.Message{m}
	var walk func(protoreflect.Message)
	walk = func(r protoreflect.Message) {
		r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					visit(v.List().Get(i).Message(), &out, walk)
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message(), &out, walk)
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				visit(v.Message(), &out, walk)
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return out
}

func visit(r protoreflect.Message, out *[]proto.Message, walk func(protoreflect.Message)) {
	if a, ok := r.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return // reported by validateDeep
		}
		r = inner.ProtoReflect()
	}
	*out = append(*out, r.Interface())
	walk(r)
}

// checkWiring checks what Envoy accepts but footstep-authz needs.
func checkWiring(b *bootstrapv3.Bootstrap) error {
	var errs []error
	if b.GetAdmin().GetAddress() == nil {
		errs = append(errs, errors.New("no admin listener: set admin.address"))
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	all := allMessages(b)
	for _, name := range referencedClusters(all) {
		if clusters[name] == nil {
			errs = append(errs, fmt.Errorf("cluster %q is referenced but not defined", name))
		}
	}
	var hcms int
	for _, m := range all {
		if hcm, ok := m.(*hcmv3.HttpConnectionManager); ok {
			hcms++
			errs = append(errs, checkHCM(hcm, clusters))
		}
	}
	if hcms == 0 {
		errs = append(errs, errors.New("no http_connection_manager"))
	}
	return errors.Join(errs...)
}

func referencedClusters(all []proto.Message) []string {
	var names []string
	for _, m := range all {
		switch m := m.(type) {
		case *routev3.RouteAction:
			if m.GetCluster() != "" {
				names = append(names, m.GetCluster())
			}
		case *routev3.WeightedCluster_ClusterWeight:
			names = append(names, m.GetName())
		case *corev3.GrpcService_EnvoyGrpc:
			names = append(names, m.GetClusterName())
		case *corev3.HttpUri:
			names = append(names, m.GetCluster())
		}
	}
	return names
}

// checkHCM checks the filter order and each ext_authz filter of one connection manager.
func checkHCM(hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) error {
	var errs []error
	authzAt, routerAt := -1, -1
	filters := hcm.GetHttpFilters()
	for i, f := range filters {
		inner, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			continue // reported by validateDeep
		}
		switch cfg := inner.(type) {
		case *extauthzv3.ExtAuthz:
			if authzAt < 0 {
				authzAt = i
			}
			errs = append(errs, checkExtAuthz(f.GetName(), cfg, hcm, clusters))
		case *routerv3.Router:
			if routerAt < 0 {
				routerAt = i
			}
		}
	}
	if authzAt < 0 {
		errs = append(errs, fmt.Errorf("connection manager %q has no ext_authz filter", hcm.GetStatPrefix()))
	}
	if routerAt < 0 || routerAt != len(filters)-1 {
		errs = append(errs, fmt.Errorf("connection manager %q: the router must be the last filter", hcm.GetStatPrefix()))
	}
	if authzAt > routerAt {
		errs = append(errs, fmt.Errorf("connection manager %q: ext_authz must come before the router", hcm.GetStatPrefix()))
	}
	return errors.Join(errs...)
}

func checkExtAuthz(name string, cfg *extauthzv3.ExtAuthz, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) error {
	var errs []error
	if cfg.GetFailureModeAllow() {
		errs = append(errs, fmt.Errorf("ext_authz %q: failure_mode_allow must be false (fail closed)", name))
	}
	if cfg.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		errs = append(errs, fmt.Errorf("ext_authz %q: transport_api_version must be V3", name))
	}
	grpc := cfg.GetGrpcService()
	if grpc == nil {
		// http_service: gRPC-only checks do not apply (config_http_test.go).
		return errors.Join(append(errs, checkHTTPService(name, cfg, clusters))...)
	}
	if d := grpc.GetTimeout(); d == nil || d.AsDuration() <= 0 {
		errs = append(errs, fmt.Errorf("ext_authz %q: grpc_service.timeout must be set", name))
	}
	if grpc.GetEnvoyGrpc() == nil {
		errs = append(errs, fmt.Errorf("ext_authz %q: use envoy_grpc", name))
	} else if c := clusters[grpc.GetEnvoyGrpc().GetClusterName()]; c != nil {
		errs = append(errs, checkAuthzCluster(c))
	}
	errs = append(errs, checkMCPRoute(name, hcm))
	return errors.Join(errs...)
}

// checkAuthzCluster checks the gRPC cluster: HTTP/2, keepalive the server accepts,
// every endpoint on the server's gRPC port.
func checkAuthzCluster(c *clusterv3.Cluster) error {
	var errs []error
	opts := &httpv3.HttpProtocolOptions{}
	anyOpts := c.GetTypedExtensionProtocolOptions()[protocolOptionsKey]
	if anyOpts == nil || anyOpts.UnmarshalTo(opts) != nil || opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		errs = append(errs, fmt.Errorf("cluster %q: gRPC needs HTTP/2: set typed_extension_protocol_options[%s].explicit_http_config.http2_protocol_options", c.GetName(), protocolOptionsKey))
	} else {
		ka := opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive()
		if ka.GetInterval() == nil || ka.GetInterval().AsDuration() < serverKeepaliveMinTime || ka.GetTimeout() == nil {
			errs = append(errs, fmt.Errorf("cluster %q: http2 connection_keepalive needs an interval >= %v (the server's MinTime) and a timeout", c.GetName(), serverKeepaliveMinTime))
		}
	}
	var ports []uint32
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			ports = append(ports, lb.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue())
		}
	}
	if len(ports) == 0 {
		errs = append(errs, fmt.Errorf("cluster %q has no endpoint", c.GetName()))
	}
	for _, p := range ports {
		if p != authzGRPCPort {
			errs = append(errs, fmt.Errorf("cluster %q: endpoint on port %d, want the gRPC port %d", c.GetName(), p, authzGRPCPort))
		}
	}
	return errors.Join(errs...)
}

// checkMCPRoute checks that the routes under /mcp select the MCP surface through the
// per-route config of this ext_authz filter, and that there is at least one.
func checkMCPRoute(filterName string, hcm *hcmv3.HttpConnectionManager) error {
	var errs []error
	found := false
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if !strings.HasPrefix(r.GetMatch().GetPrefix()+r.GetMatch().GetPath(), mcpPrefix) {
				continue
			}
			found = true
			per := &extauthzv3.ExtAuthzPerRoute{}
			a := r.GetTypedPerFilterConfig()[filterName]
			if a == nil || a.UnmarshalTo(per) != nil || per.GetCheckSettings().GetContextExtensions()["surface"] != "mcp" {
				errs = append(errs, fmt.Errorf("route %q: typed_per_filter_config[%s] must set check_settings.context_extensions surface: mcp (keys: %v)",
					r.GetName(), filterName, slices.Sorted(maps.Keys(r.GetTypedPerFilterConfig()))))
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("connection manager %q: no route under %s for the MCP surface", hcm.GetStatPrefix(), mcpPrefix))
	}
	return errors.Join(errs...)
}
