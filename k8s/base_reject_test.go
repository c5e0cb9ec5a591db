package k8s_test

import (
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/footstep/authz/internal/testkit"
)

// TestBaseRejects proves each cross-check: a mistake made to a copy of the base must
// be caught with the expected message.
func TestBaseRejects(t *testing.T) {
	good := loadBase(t)
	tests := []struct {
		name    string
		mutate  func(*deployment)
		wantErr string
	}{
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deepCopy(good)
			tt.mutate(d)
			testkit.WantError(t, fmt.Sprintf("checks after %q", tt.name), runBaseChecks(d), tt.wantErr)
		})
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
