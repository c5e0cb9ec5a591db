package k8s_test

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// example is one example's objects plus the base they point at.
type example struct {
	base *deployment
	objs []runtime.Object
	// values is a Helm values file that goes with the example, if any.
	values map[string]any
}

var exampleChecks = []struct {
	dir, values string
	check       func(*example) error
}{
	{"examples/sidecar", "", checkSidecar},
	{"examples/envoy-gateway", "", checkEnvoyGateway},
	{"examples/istio", "examples/istio/istiod-values.yaml", checkIstio},
	{"examples/nats-credentials", "", checkNATSCredentials},
	{"", "nats/values.yaml", checkNATSValues},
}

func loadExample(tb testing.TB, base *deployment, dir, values string) *example {
	tb.Helper()
	ex := &example{base: base}
	if dir != "" {
		ex.objs = build(tb, dir)
	}
	if values != "" {
		ex.values = readYAML(tb, values)
	}
	return ex
}

func TestExamples(t *testing.T) {
	base := loadBase(t)
	for _, c := range exampleChecks {
		t.Run(c.dir+c.values, func(t *testing.T) {
			if err := c.check(loadExample(t, base, c.dir, c.values)); err != nil {
				t.Error(err)
			}
		})
	}
}

// grpcService returns the base's ClusterIP Service and its port for the gRPC server.
func (d *deployment) grpcService(headless bool) (*corev1.Service, int32, error) {
	c, ports, err := d.containerPorts()
	if err != nil {
		return nil, 0, err
	}
	for _, s := range d.svcs {
		if (s.Spec.ClusterIP == corev1.ClusterIPNone) != headless {
			continue
		}
		for _, sp := range s.Spec.Ports {
			if p, ok := containerPort(c, sp.TargetPort); ok && p == ports["grpc"] {
				return s, sp.Port, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("no Service (headless %v) for the gRPC port", headless)
}

func serviceDNS(s *corev1.Service) string {
	return s.Name + "." + s.Namespace + ".svc.cluster.local"
}

func unstructuredOf(objs []runtime.Object, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// checkSidecar checks the sidecar example: its Envoy may reach footstep-authz, asks the
// headless Service on the gRPC port, and is what the application's Service targets.
func checkSidecar(ex *example) error {
	var dep *appsv1.Deployment
	var svc *corev1.Service
	cms := map[string]*corev1.ConfigMap{}
	for _, o := range ex.objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			dep = o
		case *corev1.Service:
			svc = o
		case *corev1.ConfigMap:
			cms[o.Name] = o
		}
	}
	if dep == nil || svc == nil {
		return errors.New("sidecar example: want a Deployment and a Service")
	}
	i := slices.IndexFunc(dep.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "envoy" })
	if i < 0 {
		return errors.New("sidecar example: no envoy container")
	}
	envoy := dep.Spec.Template.Spec.Containers[i]
	var errs []error
	if !allowedByPolicy(ex.base, dep.Spec.Template.Labels) {
		errs = append(errs, fmt.Errorf("sidecar pods %v are not allowed in by footstep-authz's NetworkPolicy", dep.Spec.Template.Labels))
	}
	if p, ok := containerPort(envoy, svc.Spec.Ports[0].TargetPort); !ok {
		errs = append(errs, fmt.Errorf("Service %s: targetPort %s is not an Envoy port", svc.Name, svc.Spec.Ports[0].TargetPort.String()))
	} else if !selectsMap(svc.Spec.Selector, dep.Spec.Template.Labels) {
		errs = append(errs, fmt.Errorf("Service %s selects no sidecar pod", svc.Name))
	} else {
		errs = append(errs, checkSidecarBootstrap(ex.base, dep, envoy, cms, p))
	}
	return errors.Join(errs...)
}

func allowedByPolicy(d *deployment, lbls map[string]string) bool {
	for _, np := range d.nps {
		for _, rule := range np.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.PodSelector != nil && selects(peer.PodSelector, lbls) {
					return true
				}
			}
		}
	}
	return false
}

// checkSidecarBootstrap reads the Envoy bootstrap mounted into the envoy container
// (validated in full by the envoy package's test) and checks its addresses.
func checkSidecarBootstrap(d *deployment, dep *appsv1.Deployment, envoy corev1.Container, cms map[string]*corev1.ConfigMap, listenPort int32) error {
	var cm *corev1.ConfigMap
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && slices.ContainsFunc(envoy.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == v.Name }) {
			cm = cms[v.ConfigMap.Name]
			if cm == nil {
				return fmt.Errorf("envoy mounts ConfigMap %q, which does not exist", v.ConfigMap.Name)
			}
		}
	}
	if cm == nil {
		return errors.New("envoy container mounts no ConfigMap")
	}
	var boot map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["envoy.yaml"]), &boot); err != nil || boot == nil {
		return fmt.Errorf("ConfigMap %s: no envoy.yaml bootstrap", cm.Name)
	}
	var errs []error
	listeners := slice(boot, "static_resources", "listeners")
	if len(listeners) == 0 || int32(num(listeners[0], "address", "socket_address", "port_value")) != listenPort {
		errs = append(errs, fmt.Errorf("Envoy's listener is not on the container port %d", listenPort))
	}
	headless, port, err := d.grpcService(true)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	found := false
	for _, c := range slice(boot, "static_resources", "clusters") {
		for _, e := range slice(c, "load_assignment", "endpoints") {
			for _, lb := range slice(e, "lb_endpoints") {
				addr := str(lb, "endpoint", "address", "socket_address", "address")
				p := int32(num(lb, "endpoint", "address", "socket_address", "port_value"))
				if p == port {
					found = true
					if addr != serviceDNS(headless) {
						errs = append(errs, fmt.Errorf("authz cluster address %q; want the headless Service %s", addr, serviceDNS(headless)))
					}
				}
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("no Envoy cluster on footstep-authz's gRPC port %d", port))
	}
	return errors.Join(errs...)
}

// checkEnvoyGateway checks the SecurityPolicies: they point at the Service's gRPC
// port, fail closed, target existing routes, are allowed across namespaces, and the
// routes under /mcp carry surface=mcp.
func checkEnvoyGateway(ex *example) error {
	svc, port, err := ex.base.grpcService(false)
	if err != nil {
		return err
	}
	routes := map[string]*unstructured.Unstructured{}
	for _, r := range unstructuredOf(ex.objs, "HTTPRoute") {
		routes[r.GetNamespace()+"/"+r.GetName()] = r
	}
	policies := unstructuredOf(ex.objs, "SecurityPolicy")
	if len(policies) == 0 {
		return errors.New("no SecurityPolicy")
	}
	var errs []error
	mcpCovered := map[string]bool{}
	for _, p := range policies {
		spec := p.Object
		if b, _, _ := unstructured.NestedBool(spec, "spec", "extAuth", "failOpen"); b {
			errs = append(errs, fmt.Errorf("SecurityPolicy %s: failOpen must be false", p.GetName()))
		}
		refs := slice(spec, "spec", "extAuth", "grpc", "backendRefs")
		if len(refs) == 0 {
			errs = append(errs, fmt.Errorf("SecurityPolicy %s: no extAuth.grpc.backendRefs", p.GetName()))
		}
		for _, ref := range refs {
			ns := str(ref, "namespace")
			if ns == "" {
				ns = p.GetNamespace()
			}
			if str(ref, "name") != svc.Name || ns != svc.Namespace || int32(num(ref, "port")) != port || !slices.Contains([]string{"", "Service"}, str(ref, "kind")) {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s: backendRef %s/%s:%d; want Service %s/%s:%d", p.GetName(), ns, str(ref, "name"), num(ref, "port"), svc.Namespace, svc.Name, port))
			} else if ns != p.GetNamespace() && !referenceGranted(ex.objs, p, svc) {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s: no ReferenceGrant in %s lets it use Service %s", p.GetName(), ns, svc.Name))
			}
		}
		surface := ""
		for _, ce := range slice(spec, "spec", "extAuth", "contextExtensions") {
			if str(ce, "name") == "surface" {
				surface = str(ce, "value")
			}
		}
		for _, t := range slice(spec, "spec", "targetRefs") {
			r := routes[p.GetNamespace()+"/"+str(t, "name")]
			if str(t, "kind") != "HTTPRoute" || r == nil {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s targets %s %s, which is not in the example", p.GetName(), str(t, "kind"), str(t, "name")))
				continue
			}
			if isMCP := routeUnder(r, "/mcp"); isMCP != (surface == "mcp") {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s: route %s (MCP %v) has context extension surface=%q", p.GetName(), r.GetName(), isMCP, surface))
			} else if isMCP {
				mcpCovered[r.GetName()] = true
			}
		}
	}
	for _, r := range routes {
		if routeUnder(r, "/mcp") && !mcpCovered[r.GetName()] {
			errs = append(errs, fmt.Errorf("HTTPRoute %s serves /mcp without a SecurityPolicy carrying surface=mcp", r.GetName()))
		}
	}
	return errors.Join(errs...)
}

func routeUnder(r *unstructured.Unstructured, prefix string) bool {
	for _, rule := range slice(r.Object, "spec", "rules") {
		for _, m := range slice(rule, "matches") {
			if strings.HasPrefix(str(m, "path", "value"), prefix) {
				return true
			}
		}
	}
	return false
}

func referenceGranted(objs []runtime.Object, p *unstructured.Unstructured, svc *corev1.Service) bool {
	for _, g := range unstructuredOf(objs, "ReferenceGrant") {
		if g.GetNamespace() != svc.Namespace {
			continue
		}
		from := slices.ContainsFunc(slice(g.Object, "spec", "from"), func(f map[string]any) bool {
			return str(f, "group") == "gateway.envoyproxy.io" && str(f, "kind") == p.GetKind() && str(f, "namespace") == p.GetNamespace()
		})
		to := slices.ContainsFunc(slice(g.Object, "spec", "to"), func(t map[string]any) bool {
			return str(t, "group") == "" && str(t, "kind") == "Service" && (str(t, "name") == "" || str(t, "name") == svc.Name)
		})
		if from && to {
			return true
		}
	}
	return false
}

// checkIstio checks the mesh's extension provider, the CUSTOM policy that uses it,
// and the EnvoyFilter that gives the MCP route its surface.
func checkIstio(ex *example) error {
	svc, port, err := ex.base.grpcService(false)
	if err != nil {
		return err
	}
	var errs []error
	providers := map[string]bool{}
	for _, p := range slice(ex.values, "meshConfig", "extensionProviders") {
		g, ok := p["envoyExtAuthzGrpc"].(map[string]any)
		if !ok {
			continue
		}
		providers[str(p, "name")] = true
		if str(g, "service") != serviceDNS(svc) || int32(num(g, "port")) != port {
			errs = append(errs, fmt.Errorf("extension provider %s: %s:%d; want %s:%d", str(p, "name"), str(g, "service"), num(g, "port"), serviceDNS(svc), port))
		}
		if b, _, _ := unstructured.NestedBool(g, "failOpen"); b {
			errs = append(errs, fmt.Errorf("extension provider %s: failOpen must be false", str(p, "name")))
		}
	}
	policies := unstructuredOf(ex.objs, "AuthorizationPolicy")
	if len(policies) == 0 {
		errs = append(errs, errors.New("no AuthorizationPolicy"))
	}
	for _, p := range policies {
		if str(p.Object, "spec", "action") != "CUSTOM" || !providers[str(p.Object, "spec", "provider", "name")] {
			errs = append(errs, fmt.Errorf("AuthorizationPolicy %s: want action CUSTOM with a provider of the mesh config, got %s %q",
				p.GetName(), str(p.Object, "spec", "action"), str(p.Object, "spec", "provider", "name")))
		}
	}
	return errors.Join(append(errs, checkIstioMCP(ex.objs))...)
}

func checkIstioMCP(objs []runtime.Object) error {
	mcpRoutes := map[string]bool{}
	for _, vs := range unstructuredOf(objs, "VirtualService") {
		for _, h := range slice(vs.Object, "spec", "http") {
			for _, m := range slice(h, "match") {
				if strings.HasPrefix(str(m, "uri", "prefix"), "/mcp") {
					mcpRoutes[str(h, "name")] = true
				}
			}
		}
	}
	var errs []error
	patched := map[string]bool{}
	for _, f := range unstructuredOf(objs, "EnvoyFilter") {
		for _, cp := range slice(f.Object, "spec", "configPatches") {
			route := str(cp, "match", "routeConfiguration", "vhost", "route", "name")
			per, _, _ := unstructured.NestedFieldNoCopy(cp, "patch", "value", "typed_per_filter_config", "envoy.filters.http.ext_authz")
			if err := checkPerRoute(per); err != nil {
				errs = append(errs, fmt.Errorf("EnvoyFilter %s: %w", f.GetName(), err))
				continue
			}
			if !mcpRoutes[route] {
				errs = append(errs, fmt.Errorf("EnvoyFilter %s patches route %q, which is not a VirtualService route under /mcp", f.GetName(), route))
			}
			patched[route] = true
		}
	}
	for r := range mcpRoutes {
		if r == "" || !patched[r] {
			errs = append(errs, fmt.Errorf("MCP route %q gets no surface=mcp (name it and patch it)", r))
		}
	}
	return errors.Join(errs...)
}

// checkPerRoute decodes an ExtAuthzPerRoute strictly, validates it, and wants surface=mcp.
func checkPerRoute(v any) error {
	js, err := yaml.Marshal(v)
	if err == nil {
		js, err = yaml.YAMLToJSON(js)
	}
	packed := &anypb.Any{}
	if err == nil {
		err = protojson.Unmarshal(js, packed)
	}
	per := &extauthzv3.ExtAuthzPerRoute{}
	if err == nil {
		err = packed.UnmarshalTo(per)
	}
	if err == nil {
		err = per.ValidateAll()
	}
	if err != nil {
		return fmt.Errorf("ExtAuthzPerRoute: %w", err)
	}
	if got := per.GetCheckSettings().GetContextExtensions()["surface"]; got != "mcp" {
		return fmt.Errorf("ExtAuthzPerRoute: context_extensions surface = %q; want mcp", got)
	}
	return nil
}

// checkNATSCredentials checks that the Secret example is the one the Deployment mounts,
// with the file FOOTSTEP_NATS_CREDS names.
func checkNATSCredentials(ex *example) error {
	c, s, err := ex.base.containerSettings()
	if err != nil {
		return err
	}
	creds := s["FOOTSTEP_NATS_CREDS"]
	want := secretVolumeFor(ex.base.dep.Spec.Template.Spec, c, creds)
	for _, o := range ex.objs {
		sec, ok := o.(*corev1.Secret)
		if !ok {
			continue
		}
		if sec.Name != want || sec.Namespace != ex.base.dep.Namespace {
			return fmt.Errorf("Secret %s/%s; the Deployment mounts %s/%s", sec.Namespace, sec.Name, ex.base.dep.Namespace, want)
		}
		if _, ok := sec.Data[path.Base(creds)]; !ok {
			return fmt.Errorf("Secret %s has no key %s (FOOTSTEP_NATS_CREDS=%s)", sec.Name, path.Base(creds), creds)
		}
		return nil
	}
	return errors.New("no Secret in the NATS credentials example")
}

// checkNATSValues checks the NATS chart values: a JetStream cluster on disk with enough
// servers for the bucket's replicas.
func checkNATSValues(ex *example) error {
	_, s, err := ex.base.containerSettings()
	if err != nil {
		return err
	}
	want, _ := strconv.Atoi(s["FOOTSTEP_KV_REPLICAS"])
	var errs []error
	cluster, _, _ := unstructured.NestedBool(ex.values, "config", "cluster", "enabled")
	if n := int(num(ex.values, "config", "cluster", "replicas")); !cluster || n < want || n < 3 {
		errs = append(errs, fmt.Errorf("NATS values: cluster of %d servers (enabled %v); want 3 or more and at least FOOTSTEP_KV_REPLICAS=%d", n, cluster, want))
	}
	js, _, _ := unstructured.NestedBool(ex.values, "config", "jetstream", "enabled")
	file, _, _ := unstructured.NestedBool(ex.values, "config", "jetstream", "fileStore", "enabled")
	pvc, _, _ := unstructured.NestedBool(ex.values, "config", "jetstream", "fileStore", "pvc", "enabled")
	if !js || !file || !pvc {
		errs = append(errs, errors.New("NATS values: want JetStream with file storage on a persistent volume"))
	}
	return errors.Join(errs...)
}
