package k8s_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	appName       = "footstep-authz"
	containerName = "footstep-authz"
	// bucketReplicas is what a 3-node NATS cluster must keep of the bucket.
	bucketReplicas = "3"
)

// deployment is the base's objects, by kind.
type deployment struct {
	dep  *appsv1.Deployment
	cms  map[string]*corev1.ConfigMap
	sas  map[string]*corev1.ServiceAccount
	svcs []*corev1.Service
	pdbs []*policyv1.PodDisruptionBudget
	hpas []*autoscalingv2.HorizontalPodAutoscaler
	nps  []*networkingv1.NetworkPolicy
}

func loadBase(tb testing.TB) *deployment {
	tb.Helper()
	d, err := sortObjects(build(tb, "base"))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func sortObjects(objs []runtime.Object) (*deployment, error) {
	d := &deployment{cms: map[string]*corev1.ConfigMap{}, sas: map[string]*corev1.ServiceAccount{}}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			if o.Name == appName {
				d.dep = o
			}
		case *corev1.ConfigMap:
			d.cms[o.Name] = o
		case *corev1.ServiceAccount:
			d.sas[o.Name] = o
		case *corev1.Service:
			d.svcs = append(d.svcs, o)
		case *policyv1.PodDisruptionBudget:
			d.pdbs = append(d.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			d.hpas = append(d.hpas, o)
		case *networkingv1.NetworkPolicy:
			d.nps = append(d.nps, o)
		}
	}
	if d.dep == nil {
		return nil, fmt.Errorf("no Deployment %s", appName)
	}
	return d, nil
}

func (d *deployment) container() (corev1.Container, error) {
	for _, c := range d.dep.Spec.Template.Spec.Containers {
		if c.Name == containerName {
			return c, nil
		}
	}
	return corev1.Container{}, fmt.Errorf("Deployment %s has no container %s", d.dep.Name, containerName)
}

// containerSettings returns the server's container and its settings as the
// process would see them.
func (d *deployment) containerSettings() (corev1.Container, map[string]string, error) {
	c, err := d.container()
	if err != nil {
		return corev1.Container{}, nil, err
	}
	s, err := settings(c, d.cms)
	return c, s, err
}

// containerPorts returns the server's container and the ports it will listen on.
func (d *deployment) containerPorts() (corev1.Container, map[string]int32, error) {
	c, err := d.container()
	if err != nil {
		return corev1.Container{}, nil, err
	}
	ports, err := d.ports()
	return c, ports, err
}

// ports returns the grpc, http and admin ports the server will listen on.
func (d *deployment) ports() (map[string]int32, error) {
	c, err := d.container()
	if err != nil {
		return nil, err
	}
	s, err := settings(c, d.cms)
	if err != nil {
		return nil, err
	}
	ports := map[string]int32{}
	for name, key := range map[string]string{"grpc": "FOOTSTEP_GRPC_ADDR", "http": "FOOTSTEP_HTTP_ADDR", "admin": "FOOTSTEP_ADMIN_ADDR"} {
		if s[key] == "" {
			continue // turned off
		}
		p, err := portOf(s[key])
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", key, s[key], err)
		}
		ports[name] = p
	}
	return ports, nil
}

// baseChecks are the cross-checks of the base, by name.
var baseChecks = []struct {
	name  string
	check func(*deployment) error
}{
	{"container ports match the flags", checkContainerPorts},
	{"probes", checkProbes},
	{"services", checkServices},
	{"deployment selector", checkDeploymentSelector},
	{"references", checkReferences},
	{"pdb", checkPDB},
	{"hpa", checkHPA},
	{"network policy", checkNetworkPolicy},
	{"security context", checkSecurity},
	{"resources", checkResources},
	{"nats", checkNATSSettings},
	{"topology spread", checkTopologySpread},
}

func TestBase(t *testing.T) {
	d := loadBase(t)
	for _, c := range baseChecks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.check(d); err != nil {
				t.Error(err)
			}
		})
	}
}

func checkContainerPorts(d *deployment) error {
	c, ports, err := d.containerPorts()
	if err != nil {
		return err
	}
	var errs []error
	for name, want := range ports {
		got, ok := containerPort(c, intstr.FromString(name))
		if !ok || got != want {
			errs = append(errs, fmt.Errorf("container port %q = %d; the server listens on %d", name, got, want))
		}
	}
	return errors.Join(errs...)
}

func checkProbes(d *deployment) error {
	c, ports, err := d.containerPorts()
	if err != nil {
		return err
	}
	var errs []error
	probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	for kind, p := range probes {
		if p == nil {
			if kind != "startup" {
				errs = append(errs, fmt.Errorf("no %s probe", kind))
			}
			continue
		}
		errs = append(errs, checkProbe(kind, p, c, ports))
	}
	return errors.Join(errs...)
}

// checkProbe checks that a probe asks the server something it answers: gRPC health
// on the gRPC port, or /healthz (any probe) and /readyz (readiness) on the admin port.
func checkProbe(kind string, p *corev1.Probe, c corev1.Container, ports map[string]int32) error {
	switch {
	case p.GRPC != nil:
		if p.GRPC.Port != ports["grpc"] {
			return fmt.Errorf("%s probe: gRPC health on port %d; the gRPC server is on %d", kind, p.GRPC.Port, ports["grpc"])
		}
	case p.HTTPGet != nil:
		port, ok := containerPort(c, p.HTTPGet.Port)
		if !ok || port != ports["admin"] {
			return fmt.Errorf("%s probe: port %s is not the admin port %d", kind, p.HTTPGet.Port.String(), ports["admin"])
		}
		want := map[string]bool{"/healthz": true, "/readyz": kind == "readiness"}
		if !want[p.HTTPGet.Path] {
			return fmt.Errorf("%s probe: path %q; want /healthz or (readiness) /readyz", kind, p.HTTPGet.Path)
		}
	default:
		return fmt.Errorf("%s probe: use gRPC health or the admin endpoints", kind)
	}
	return nil
}

func checkServices(d *deployment) error {
	c, ports, err := d.containerPorts()
	if err != nil {
		return err
	}
	if len(d.svcs) == 0 {
		return errors.New("no Service")
	}
	var errs []error
	for _, s := range d.svcs {
		if !selectsMap(s.Spec.Selector, d.dep.Spec.Template.Labels) {
			errs = append(errs, fmt.Errorf("Service %s: selector %v does not select the pods %v", s.Name, s.Spec.Selector, d.dep.Spec.Template.Labels))
		}
		for _, sp := range s.Spec.Ports {
			target, ok := containerPort(c, sp.TargetPort)
			if !ok {
				errs = append(errs, fmt.Errorf("Service %s port %s: targetPort %s is not a container port", s.Name, sp.Name, sp.TargetPort.String()))
				continue
			}
			if target == ports["grpc"] && (sp.AppProtocol == nil || !grpcAppProtocols[*sp.AppProtocol]) {
				errs = append(errs, fmt.Errorf("Service %s port %s: gRPC needs appProtocol kubernetes.io/h2c or grpc", s.Name, sp.Name))
			}
		}
	}
	return errors.Join(errs...)
}

var grpcAppProtocols = map[string]bool{"kubernetes.io/h2c": true, "grpc": true}

func checkDeploymentSelector(d *deployment) error {
	if !selects(d.dep.Spec.Selector, d.dep.Spec.Template.Labels) {
		return fmt.Errorf("Deployment selector does not match its pod labels")
	}
	if r := d.dep.Spec.Replicas; r == nil || *r < 2 {
		return errors.New("Deployment: want 2 or more replicas")
	}
	return nil
}

func checkReferences(d *deployment) error {
	spec := d.dep.Spec.Template.Spec
	if sa := spec.ServiceAccountName; sa != "" && d.sas[sa] == nil {
		return fmt.Errorf("ServiceAccount %q does not exist", sa)
	}
	c, err := d.container()
	if err != nil {
		return err
	}
	_, err = settings(c, d.cms) // envFrom ConfigMaps exist
	return err
}

func checkPDB(d *deployment) error {
	if len(d.pdbs) == 0 {
		return errors.New("no PodDisruptionBudget")
	}
	var errs []error
	for _, p := range d.pdbs {
		if !selects(p.Spec.Selector, d.dep.Spec.Template.Labels) {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s selects no pod", p.Name))
		}
		if m := p.Spec.MinAvailable; m != nil && m.Type == intstr.Int && m.IntVal >= *d.dep.Spec.Replicas {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: minAvailable %d >= replicas %d blocks every drain", p.Name, m.IntVal, *d.dep.Spec.Replicas))
		}
	}
	return errors.Join(errs...)
}

func checkHPA(d *deployment) error {
	if len(d.hpas) == 0 {
		return errors.New("no HorizontalPodAutoscaler")
	}
	var errs []error
	for _, h := range d.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != d.dep.Name {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s targets %s %s, not the Deployment", h.Name, ref.Kind, ref.Name))
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s: minReplicas below 2", h.Name))
		}
	}
	return errors.Join(errs...)
}

func checkNetworkPolicy(d *deployment) error {
	c, ports, err := d.containerPorts()
	if err != nil {
		return err
	}
	s, err := settings(c, d.cms)
	if err != nil {
		return err
	}
	for _, np := range d.nps {
		if !selects(&np.Spec.PodSelector, d.dep.Spec.Template.Labels) {
			continue
		}
		var errs []error
		open := map[int32]bool{}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				port, ok := containerPort(c, *p.Port)
				if !ok {
					errs = append(errs, fmt.Errorf("NetworkPolicy %s: ingress port %s is not a container port", np.Name, p.Port.String()))
				}
				open[port] = true
			}
		}
		if !open[ports["grpc"]] {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s: the gRPC port %d is closed to Envoy", np.Name, ports["grpc"]))
		}
		natsPort, err := natsPort(s["FOOTSTEP_NATS_URL"])
		if err != nil {
			errs = append(errs, err)
		}
		if !egressOpen(np, natsPort, corev1.ProtocolTCP) {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s: no egress to NATS port %d", np.Name, natsPort))
		}
		if !egressOpen(np, 53, corev1.ProtocolUDP) || !egressOpen(np, 53, corev1.ProtocolTCP) {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s: no egress to DNS (53 UDP and TCP)", np.Name))
		}
		return errors.Join(errs...)
	}
	return errors.New("no NetworkPolicy selects the footstep-authz pods")
}

func natsPort(url string) (int32, error) {
	first, _, _ := strings.Cut(url, ",")
	host := strings.TrimPrefix(strings.TrimPrefix(first, "nats://"), "tls://")
	if !strings.Contains(host, ":") {
		return 4222, nil
	}
	p, err := portOf(host)
	if err != nil {
		return 0, fmt.Errorf("FOOTSTEP_NATS_URL %q: %w", url, err)
	}
	return p, nil
}

func egressOpen(np *networkingv1.NetworkPolicy, port int32, proto corev1.Protocol) bool {
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			pp := corev1.ProtocolTCP
			if p.Protocol != nil {
				pp = *p.Protocol
			}
			if p.Port != nil && p.Port.IntVal == port && pp == proto {
				return true
			}
		}
	}
	return false
}

// checkSecurity checks the "restricted" Pod Security Standard and a read-only root.
func checkSecurity(d *deployment) error {
	spec := d.dep.Spec.Template.Spec
	c, err := d.container()
	if err != nil {
		return err
	}
	var errs []error
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		errs = append(errs, errors.New("pod: runAsNonRoot must be true"))
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errs = append(errs, errors.New("pod: seccompProfile must be RuntimeDefault"))
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errs = append(errs, errors.New("container: readOnlyRootFilesystem must be true"))
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, errors.New("container: allowPrivilegeEscalation must be false"))
	}
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		errs = append(errs, errors.New("container: capabilities must drop ALL"))
	}
	return errors.Join(errs...)
}

// checkResources checks requests and limits, and that the cache fits in the memory limit.
func checkResources(d *deployment) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			errs = append(errs, fmt.Errorf("no %s request", r))
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			errs = append(errs, fmt.Errorf("no %s limit", r))
		}
	}
	s, err := settings(c, d.cms)
	if err != nil {
		return err
	}
	if size := s["FOOTSTEP_CACHE_SIZE"]; size != "" {
		q, err := resource.ParseQuantity(strings.TrimSuffix(size, "B"))
		limit := c.Resources.Limits[corev1.ResourceMemory]
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("FOOTSTEP_CACHE_SIZE %q: %w", size, err))
		case q.Value()*2 > limit.Value():
			errs = append(errs, fmt.Errorf("FOOTSTEP_CACHE_SIZE %s leaves too little of the memory limit %s (want at most half)", size, limit.String()))
		}
	}
	return errors.Join(errs...)
}

// checkNATSSettings checks the NATS settings: a cluster URL, a bucket replicated as the
// NATS cluster allows, and credentials read from a mounted Secret.
func checkNATSSettings(d *deployment) error {
	c, s, err := d.containerSettings()
	if err != nil {
		return err
	}
	var errs []error
	if s["FOOTSTEP_NATS_URL"] == "" {
		errs = append(errs, errors.New("FOOTSTEP_NATS_URL is empty: the pods would each run an embedded NATS"))
	}
	if s["FOOTSTEP_KV_REPLICAS"] != bucketReplicas {
		errs = append(errs, fmt.Errorf("FOOTSTEP_KV_REPLICAS = %q; want %s on the 3-node NATS cluster", s["FOOTSTEP_KV_REPLICAS"], bucketReplicas))
	}
	if creds := s["FOOTSTEP_NATS_CREDS"]; creds != "" && secretVolumeFor(d.dep.Spec.Template.Spec, c, creds) == "" {
		errs = append(errs, fmt.Errorf("FOOTSTEP_NATS_CREDS %s is not in a mounted Secret", creds))
	}
	return errors.Join(errs...)
}

// secretVolumeFor returns the Secret mounted at the directory of path in c, or "".
func secretVolumeFor(spec corev1.PodSpec, c corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	return ""
}

func checkTopologySpread(d *deployment) error {
	tsc := d.dep.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) == 0 {
		return errors.New("no topologySpreadConstraints")
	}
	for _, t := range tsc {
		if !selects(t.LabelSelector, d.dep.Spec.Template.Labels) {
			return fmt.Errorf("topologySpreadConstraint on %s selects no pod of the Deployment", t.TopologyKey)
		}
	}
	return nil
}
