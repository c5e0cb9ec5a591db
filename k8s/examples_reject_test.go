package k8s_test

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/footstep/authz/internal/testkit"
)

// TestExamplesReject proves each example check with a mistake made to a fresh copy.
func TestExamplesReject(t *testing.T) {
	base := loadBase(t)
	tests := []struct {
		name    string
		example int // index in exampleChecks
		mutate  func(*example)
		wantErr string
	}{
		{"sidecar pods not allowed by the NetworkPolicy", 0, func(ex *example) {
			delete(first[*appsv1.Deployment](ex).Spec.Template.Labels, "authz.footstep.dev/client")
		}, "NetworkPolicy"},
		{"sidecar Service targets the app, not Envoy", 0, func(ex *example) {
			first[*corev1.Service](ex).Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
		}, "not an Envoy port"},
		{"sidecar Envoy listens elsewhere", 0, editSidecarEnvoy("port_value: 8000", "port_value: 8001"), "listener"},
		{"sidecar asks the ClusterIP Service", 0, editSidecarEnvoy("footstep-authz-headless.", "footstep-authz."), "headless"},
		{"sidecar asks the HTTP port", 0, editSidecarEnvoy("port_value: 9001", "port_value: 9002"), "gRPC port"},
		{"sidecar mounts a missing ConfigMap", 0, func(ex *example) {
			first[*appsv1.Deployment](ex).Spec.Template.Spec.Volumes[0].ConfigMap.Name = "envoy"
		}, "does not exist"},
		{"gateway backendRef on the HTTP port", 1, func(ex *example) {
			setRef(ex, "SecurityPolicy", 0, "port", int64(9002))
		}, "want Service footstep/footstep-authz:9001"},
		{"gateway backendRef to another Service", 1, func(ex *example) {
			setRef(ex, "SecurityPolicy", 0, "name", "authz")
		}, "want Service"},
		{"gateway without ReferenceGrant", 1, func(ex *example) {
			ex.objs = without(ex.objs, "ReferenceGrant")
		}, "ReferenceGrant"},
		{"gateway fails open", 1, func(ex *example) {
			_ = unstructured.SetNestedField(unstructuredOf(ex.objs, "SecurityPolicy")[0].Object, true, "spec", "extAuth", "failOpen")
		}, "failOpen"},
		{"gateway MCP policy without surface", 1, func(ex *example) {
			unstructured.RemoveNestedField(policy(ex, "footstep-authz-mcp").Object, "spec", "extAuth", "contextExtensions")
		}, "serves /mcp without"},
		{"gateway API policy with surface mcp", 1, func(ex *example) {
			api, mcp := policy(ex, "footstep-authz-api"), policy(ex, "footstep-authz-mcp")
			ce, _, _ := unstructured.NestedSlice(mcp.Object, "spec", "extAuth", "contextExtensions")
			_ = unstructured.SetNestedSlice(api.Object, ce, "spec", "extAuth", "contextExtensions")
		}, `surface="mcp"`},
		{"gateway policy targets a missing route", 1, func(ex *example) {
			_ = unstructured.SetNestedSlice(policy(ex, "footstep-authz-api").Object,
				[]any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "apis"}}, "spec", "targetRefs")
		}, "not in the example"},
		{"istio provider on the wrong port", 2, func(ex *example) {
			provider(ex)["port"] = int64(9002)
		}, "want footstep-authz.footstep.svc.cluster.local:9001"},
		{"istio provider fails open", 2, func(ex *example) {
			provider(ex)["failOpen"] = true
		}, "failOpen"},
		{"istio policy names another provider", 2, func(ex *example) {
			_ = unstructured.SetNestedField(unstructuredOf(ex.objs, "AuthorizationPolicy")[0].Object, "ext-authz", "spec", "provider", "name")
		}, "CUSTOM"},
		{"istio policy not CUSTOM", 2, func(ex *example) {
			_ = unstructured.SetNestedField(unstructuredOf(ex.objs, "AuthorizationPolicy")[0].Object, "DENY", "spec", "action")
		}, "CUSTOM"},
		{"istio EnvoyFilter with surface api", 2, func(ex *example) {
			perRoute(ex)["check_settings"] = map[string]any{"context_extensions": map[string]any{"surface": "api"}}
		}, "surface"},
		{"istio EnvoyFilter with a misspelt field", 2, func(ex *example) {
			perRoute(ex)["check_setting"] = perRoute(ex)["check_settings"]
		}, "unknown field"},
		{"istio EnvoyFilter patches another route", 2, func(ex *example) {
			f := unstructuredOf(ex.objs, "EnvoyFilter")[0].Object
			cp := slice(f, "spec", "configPatches")[0]
			_ = unstructured.SetNestedField(cp, "mpc", "match", "routeConfiguration", "vhost", "route", "name")
		}, `route "mpc"`},
		{"NATS Secret under another name", 3, func(ex *example) {
			first[*corev1.Secret](ex).Name = "nats-creds"
		}, "the Deployment mounts"},
		{"NATS Secret without the creds file", 3, func(ex *example) {
			first[*corev1.Secret](ex).Data = map[string][]byte{"user.creds": nil}
		}, "no key nats.creds"},
		{"NATS single server", 4, func(ex *example) {
			_ = unstructured.SetNestedField(ex.values, int64(1), "config", "cluster", "replicas")
		}, "cluster of 1"},
		{"NATS without JetStream files", 4, func(ex *example) {
			_ = unstructured.SetNestedField(ex.values, false, "config", "jetstream", "fileStore", "enabled")
		}, "file storage"},
	}
	loaded := map[int]*example{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exampleChecks[tt.example]
			if loaded[tt.example] == nil {
				loaded[tt.example] = loadExample(t, base, c.dir, c.values)
			}
			ex := copyExample(loaded[tt.example])
			tt.mutate(ex)
			err := c.check(ex)
			testkit.WantError(t, fmt.Sprintf("%s check after %q", c.dir+c.values, tt.name), err, tt.wantErr)
		})
	}
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
