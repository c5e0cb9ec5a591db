package k8s_test

// The reject tests: each mistake made to a copy of the base, or of an
// example, must be caught by its checks with the expected message.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/footstep/authz/internal/testkit"
)

// mistake is a change made to a fresh copy of what a check passes, after
// which the check must fail with an error containing wantErr.
type mistake[T any] struct {
	name    string
	mutate  func(T)
	wantErr string
}

// checkMistakes proves each mistake in a subtest: made to a copy from fresh,
// it must make check fail with its error. what names the check in failures.
func checkMistakes[T any](t *testing.T, what string, fresh func(*testing.T) T, check func(T) error, mistakes []mistake[T]) {
	t.Helper()
	for _, m := range mistakes {
		t.Run(m.name, func(t *testing.T) {
			v := fresh(t)
			m.mutate(v)
			testkit.WantError(t, fmt.Sprintf("%s after %q", what, m.name), check(v), m.wantErr)
		})
	}
}

// TestBaseRejects proves each cross-check: a mistake made to a copy of the base must
// be caught with the expected message.
func TestBaseRejects(t *testing.T) {
	good := loadBase(t)
	fresh := func(*testing.T) *deployment { return deepCopy(good) }
	checkMistakes(t, "checks", fresh, runBaseChecks, []mistake[*deployment]{
		{"container port differs from the flag", func(d *deployment) { ctr(d).Ports[0].ContainerPort = 9101 }, "the server listens on 9001"},
		{"flag moved, port did not", func(d *deployment) { setting(d, "FOOTSTEP_ADMIN_ADDR", ":9103") }, "listens on 9103"},
		{"flag in args overrides the ConfigMap", func(d *deployment) { ctr(d).Args = []string{"--grpc-addr=:7000"} }, "listens on 7000"},
		{"readiness probe on the wrong port", func(d *deployment) { ctr(d).ReadinessProbe.GRPC.Port = 9002 }, "gRPC health on port 9002"},
		{"liveness probe on the wrong port", func(d *deployment) { ctr(d).LivenessProbe.HTTPGet.Port = intstr.FromString("http") }, "not the admin port"},
		{"liveness probe on /readyz", func(d *deployment) { ctr(d).LivenessProbe.HTTPGet.Path = "/readyz" }, "path"},
		{"no readiness probe", func(d *deployment) { ctr(d).ReadinessProbe = nil }, "no readiness probe"},
		{"Service targets a missing port", func(d *deployment) { d.svcs[0].Spec.Ports[0].TargetPort = intstr.FromString("grcp") }, "not a container port"},
		{"Service selects nothing", func(d *deployment) { d.svcs[0].Spec.Selector = map[string]string{"app": "authz"} }, "does not select"},
		{"gRPC Service port without appProtocol", func(d *deployment) { d.svcs[0].Spec.Ports[0].AppProtocol = nil }, "appProtocol"},
		{"Deployment selector mismatch", func(d *deployment) { d.dep.Spec.Selector.MatchLabels = map[string]string{"x": "y"} }, "selector"},
		{"one replica", func(d *deployment) { one := int32(1); d.dep.Spec.Replicas = &one }, "2 or more"},
		{"missing ServiceAccount", func(d *deployment) { d.dep.Spec.Template.Spec.ServiceAccountName = "authz" }, "ServiceAccount"},
		{"missing ConfigMap", func(d *deployment) { ctr(d).EnvFrom[0].ConfigMapRef.Name = "settings" }, `ConfigMap "settings"`},
		{"PDB selects nothing", func(d *deployment) { d.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"x": "y"} }, "selects no pod"},
		{"PDB blocks drains", func(d *deployment) { two := intstr.FromInt32(2); d.pdbs[0].Spec.MinAvailable = &two }, "blocks every drain"},
		{"HPA targets another Deployment", func(d *deployment) { d.hpas[0].Spec.ScaleTargetRef.Name = "authz" }, "not the Deployment"},
		{"HPA may scale to one", func(d *deployment) { one := int32(1); d.hpas[0].Spec.MinReplicas = &one }, "minReplicas"},
		{"NetworkPolicy selects nothing", func(d *deployment) { d.nps[0].Spec.PodSelector.MatchLabels = map[string]string{"x": "y"} }, "no NetworkPolicy"},
		{"NetworkPolicy closes gRPC", func(d *deployment) { d.nps[0].Spec.Ingress[0].Ports = d.nps[0].Spec.Ingress[0].Ports[1:] }, "gRPC port 9001 is closed"},
		{"NetworkPolicy opens a non-port", func(d *deployment) { p := intstr.FromInt32(9999); d.nps[0].Spec.Ingress[0].Ports[1].Port = &p }, "9999 is not a container port"},
		{"NetworkPolicy without NATS egress", func(d *deployment) { d.nps[0].Spec.Egress = d.nps[0].Spec.Egress[1:] }, "egress to NATS"},
		{"NATS on another port", func(d *deployment) { setting(d, "FOOTSTEP_NATS_URL", "nats://nats.nats:4223") }, "NATS port 4223"},
		{"NetworkPolicy without DNS", func(d *deployment) { d.nps[0].Spec.Egress = d.nps[0].Spec.Egress[:1] }, "DNS"},
		{"runs as root", func(d *deployment) { f := false; d.dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot = &f }, "runAsNonRoot"},
		{"writable root", func(d *deployment) { f := false; ctr(d).SecurityContext.ReadOnlyRootFilesystem = &f }, "readOnlyRootFilesystem"},
		{"capabilities kept", func(d *deployment) { ctr(d).SecurityContext.Capabilities.Drop = nil }, "drop ALL"},
		{"privilege escalation", func(d *deployment) { ctr(d).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"no seccomp", func(d *deployment) { d.dep.Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "seccompProfile"},
		{"no memory limit", func(d *deployment) { delete(ctr(d).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"cache larger than memory", func(d *deployment) { ctr(d).Resources.Limits[corev1.ResourceMemory] = resource.MustParse("384Mi") }, "FOOTSTEP_CACHE_SIZE"},
		{"embedded NATS", func(d *deployment) { setting(d, "FOOTSTEP_NATS_URL", "") }, "embedded NATS"},
		{"bucket not replicated", func(d *deployment) { setting(d, "FOOTSTEP_KV_REPLICAS", "1") }, "FOOTSTEP_KV_REPLICAS"},
		{"credentials not mounted", func(d *deployment) { ctr(d).VolumeMounts[0].MountPath = "/etc/nats" }, "not in a mounted Secret"},
		{"spread selects nothing", func(d *deployment) {
			d.dep.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels = map[string]string{"x": "y"}
		}, "topologySpreadConstraint"},
	})
}

// TestExamplesReject proves each example check with a mistake made to a fresh copy.
func TestExamplesReject(t *testing.T) {
	base := loadBase(t)
	// mistakes holds the mistakes of each of exampleChecks, in its order.
	mistakes := [][]mistake[*example]{
		{ // examples/sidecar
			{"sidecar pods not allowed by the NetworkPolicy", func(ex *example) {
				delete(first[*appsv1.Deployment](ex).Spec.Template.Labels, "authz.footstep.dev/client")
			}, "NetworkPolicy"},
			{"sidecar Service targets the app, not Envoy", func(ex *example) {
				first[*corev1.Service](ex).Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
			}, "not an Envoy port"},
			{"sidecar Envoy listens elsewhere", editSidecarEnvoy("port_value: 8000", "port_value: 8001"), "listener"},
			{"sidecar asks the ClusterIP Service", editSidecarEnvoy("footstep-authz-headless.", "footstep-authz."), "headless"},
			{"sidecar asks the HTTP port", editSidecarEnvoy("port_value: 9001", "port_value: 9002"), "gRPC port"},
			{"sidecar mounts a missing ConfigMap", func(ex *example) {
				first[*appsv1.Deployment](ex).Spec.Template.Spec.Volumes[0].ConfigMap.Name = "envoy"
			}, "does not exist"},
		},
		{ // examples/envoy-gateway
			{"gateway backendRef on the HTTP port", func(ex *example) {
				setRef(ex, "SecurityPolicy", 0, "port", int64(9002))
			}, "want Service footstep/footstep-authz:9001"},
			{"gateway backendRef to another Service", func(ex *example) {
				setRef(ex, "SecurityPolicy", 0, "name", "authz")
			}, "want Service"},
			{"gateway without ReferenceGrant", func(ex *example) {
				ex.objs = without(ex.objs, "ReferenceGrant")
			}, "ReferenceGrant"},
			{"gateway fails open", func(ex *example) {
				_ = unstructured.SetNestedField(unstructuredOf(ex.objs, "SecurityPolicy")[0].Object, true, "spec", "extAuth", "failOpen")
			}, "failOpen"},
			{"gateway MCP policy without surface", func(ex *example) {
				unstructured.RemoveNestedField(policy(ex, "footstep-authz-mcp").Object, "spec", "extAuth", "contextExtensions")
			}, "serves /mcp without"},
			{"gateway API policy with surface mcp", func(ex *example) {
				api, mcp := policy(ex, "footstep-authz-api"), policy(ex, "footstep-authz-mcp")
				ce, _, _ := unstructured.NestedSlice(mcp.Object, "spec", "extAuth", "contextExtensions")
				_ = unstructured.SetNestedSlice(api.Object, ce, "spec", "extAuth", "contextExtensions")
			}, `surface="mcp"`},
			{"gateway policy targets a missing route", func(ex *example) {
				_ = unstructured.SetNestedSlice(policy(ex, "footstep-authz-api").Object,
					[]any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "apis"}}, "spec", "targetRefs")
			}, "not in the example"},
		},
		{ // examples/istio
			{"istio provider on the wrong port", func(ex *example) {
				provider(ex)["port"] = int64(9002)
			}, "want footstep-authz.footstep.svc.cluster.local:9001"},
			{"istio provider fails open", func(ex *example) {
				provider(ex)["failOpen"] = true
			}, "failOpen"},
			{"istio policy names another provider", func(ex *example) {
				_ = unstructured.SetNestedField(unstructuredOf(ex.objs, "AuthorizationPolicy")[0].Object, "ext-authz", "spec", "provider", "name")
			}, "CUSTOM"},
			{"istio policy not CUSTOM", func(ex *example) {
				_ = unstructured.SetNestedField(unstructuredOf(ex.objs, "AuthorizationPolicy")[0].Object, "DENY", "spec", "action")
			}, "CUSTOM"},
			{"istio EnvoyFilter with surface api", func(ex *example) {
				perRoute(ex)["check_settings"] = map[string]any{"context_extensions": map[string]any{"surface": "api"}}
			}, "surface"},
			{"istio EnvoyFilter with a misspelt field", func(ex *example) {
				perRoute(ex)["check_setting"] = perRoute(ex)["check_settings"]
			}, "unknown field"},
			{"istio EnvoyFilter patches another route", func(ex *example) {
				f := unstructuredOf(ex.objs, "EnvoyFilter")[0].Object
				cp := slice(f, "spec", "configPatches")[0]
				_ = unstructured.SetNestedField(cp, "mpc", "match", "routeConfiguration", "vhost", "route", "name")
			}, `route "mpc"`},
		},
		{ // examples/nats-credentials
			{"NATS Secret under another name", func(ex *example) {
				first[*corev1.Secret](ex).Name = "nats-creds"
			}, "the Deployment mounts"},
			{"NATS Secret without the creds file", func(ex *example) {
				first[*corev1.Secret](ex).Data = map[string][]byte{"user.creds": nil}
			}, "no key nats.creds"},
		},
		{ // nats/values.yaml
			{"NATS single server", func(ex *example) {
				_ = unstructured.SetNestedField(ex.values, int64(1), "config", "cluster", "replicas")
			}, "cluster of 1"},
			{"NATS without JetStream files", func(ex *example) {
				_ = unstructured.SetNestedField(ex.values, false, "config", "jetstream", "fileStore", "enabled")
			}, "file storage"},
		},
	}
	for i, ms := range mistakes {
		c := exampleChecks[i]
		var loaded *example
		fresh := func(t *testing.T) *example {
			if loaded == nil {
				loaded = loadExample(t, base, c.dir, c.values)
			}
			return copyExample(loaded)
		}
		checkMistakes(t, c.dir+c.values+" check", fresh, c.check, ms)
	}
}

// runBaseChecks runs every base check on d and joins what they find.
func runBaseChecks(d *deployment) error {
	var errs []error
	for _, c := range baseChecks {
		errs = append(errs, c.check(d))
	}
	return errors.Join(errs...)
}

func ctr(d *deployment) *corev1.Container {
	for i, c := range d.dep.Spec.Template.Spec.Containers {
		if c.Name == containerName {
			return &d.dep.Spec.Template.Spec.Containers[i]
		}
	}
	panic("no container " + containerName)
}

// setting changes a key in the ConfigMap the container reads its settings from.
func setting(d *deployment, key, value string) {
	d.cms[ctr(d).EnvFrom[0].ConfigMapRef.Name].Data[key] = value
}

func deepCopy(d *deployment) *deployment {
	c := &deployment{dep: d.dep.DeepCopy(), cms: map[string]*corev1.ConfigMap{}, sas: map[string]*corev1.ServiceAccount{}}
	for k, v := range d.cms {
		c.cms[k] = v.DeepCopy()
	}
	for k, v := range d.sas {
		c.sas[k] = v.DeepCopy()
	}
	for _, s := range d.svcs {
		c.svcs = append(c.svcs, s.DeepCopy())
	}
	for _, p := range d.pdbs {
		c.pdbs = append(c.pdbs, p.DeepCopy())
	}
	for _, h := range d.hpas {
		c.hpas = append(c.hpas, h.DeepCopy())
	}
	for _, n := range d.nps {
		c.nps = append(c.nps, n.DeepCopy())
	}
	return c
}

// editSidecarEnvoy is a mistake made to the sidecar example's Envoy config:
// old replaced once by new.
func editSidecarEnvoy(old, new string) func(*example) {
	return func(ex *example) {
		cm := first[*corev1.ConfigMap](ex)
		cm.Data["envoy.yaml"] = strings.Replace(cm.Data["envoy.yaml"], old, new, 1)
	}
}

func copyExample(ex *example) *example {
	c := &example{base: ex.base}
	for _, o := range ex.objs {
		c.objs = append(c.objs, o.DeepCopyObject())
	}
	if ex.values != nil {
		c.values = runtime.DeepCopyJSON(ex.values)
	}
	return c
}

// first returns the example's first object of type T.
func first[T runtime.Object](ex *example) T {
	for _, o := range ex.objs {
		if t, ok := o.(T); ok {
			return t
		}
	}
	panic("no such object in the example")
}

func without(objs []runtime.Object, kind string) []runtime.Object {
	var out []runtime.Object
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind != kind {
			out = append(out, o)
		}
	}
	return out
}

func policy(ex *example, name string) *unstructured.Unstructured {
	for _, p := range unstructuredOf(ex.objs, "SecurityPolicy") {
		if p.GetName() == name {
			return p
		}
	}
	panic("no SecurityPolicy " + name)
}

func setRef(ex *example, kind string, i int, field string, v any) {
	p := unstructuredOf(ex.objs, kind)[i]
	slice(p.Object, "spec", "extAuth", "grpc", "backendRefs")[0][field] = v
}

func provider(ex *example) map[string]any {
	return slice(ex.values, "meshConfig", "extensionProviders")[0]["envoyExtAuthzGrpc"].(map[string]any)
}

func perRoute(ex *example) map[string]any {
	cp := slice(unstructuredOf(ex.objs, "EnvoyFilter")[0].Object, "spec", "configPatches")[0]
	v, _, _ := unstructured.NestedFieldNoCopy(cp, "patch", "value", "typed_per_filter_config", "envoy.filters.http.ext_authz")
	return v.(map[string]any)
}
