package k8s_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const (
	chartDir = "../charts/footstep-authz"
	// The release the chart tests render: its names then match the base's.
	releaseName      = "footstep-authz"
	releaseNamespace = "footstep"
	// helmKubeVersion is the Kubernetes version the chart is rendered for: the
	// chart's minimum is 1.30, and a helm built without version stamps assumes 1.20.
	helmKubeVersion = "1.32.0"
	// requireHelmEnv makes a missing helm a failure instead of a skip (CI sets it).
	requireHelmEnv = "FOOTSTEP_REQUIRE_HELM"
)

// chartValues are the values files of the chart tests, under the chart's ci/ folder.
var chartValues = []string{"", "ci/all-on-values.yaml", "ci/all-off-values.yaml"}

// helmPath returns the helm binary, or skips (fails with FOOTSTEP_REQUIRE_HELM=1).
func helmPath(tb testing.TB) string {
	tb.Helper()
	helm, err := exec.LookPath("helm")
	if err == nil {
		return helm
	}
	msg := "helm not found: run .ci/install-helm.sh and put the folder it prints on PATH to check the chart"
	if os.Getenv(requireHelmEnv) == "1" {
		tb.Fatalf("%s (%s=1)", msg, requireHelmEnv)
	}
	tb.Skip(msg)
	return ""
}

// runHelm runs helm with args and returns its standard output, or an error that
// carries its standard error.
func runHelm(tb testing.TB, args ...string) ([]byte, error) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmPath(tb), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

// templateArgs are the arguments of helm template for a values file (chart-relative,
// "" for the defaults) and extra arguments such as --set.
func templateArgs(values string, extra ...string) []string {
	args := []string{"template", releaseName, chartDir, "--namespace", releaseNamespace, "--kube-version", helmKubeVersion}
	if values != "" {
		args = append(args, "--values", filepath.Join(chartDir, values))
	}
	return append(args, extra...)
}

// renderChart renders the chart and decodes every object strictly.
func renderChart(tb testing.TB, values string, extra ...string) []runtime.Object {
	tb.Helper()
	out, err := runHelm(tb, templateArgs(values, extra...)...)
	if err != nil {
		tb.Fatal(err)
	}
	objs, err := decodeChart(out)
	if err != nil {
		tb.Fatalf("helm template %s: %v", values, err)
	}
	return objs
}

// decodeChart is decodeAll for the chart's output: the ServiceMonitor, a custom
// resource client-go does not know, decodes as unstructured and checkServiceMonitor
// checks its fields.
func decodeChart(data []byte) ([]runtime.Object, error) {
	return decodeDocs(data, func(doc []byte) (runtime.Object, error) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			return nil, nil
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(mustJSON(doc)); err == nil && u.GroupVersionKind().Group == "monitoring.coreos.com" {
			return u, nil
		}
		return decodeStrict(doc)
	})
}

// stripComments drops the comment lines (helm's "# Source:" lines) of a document.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l...)
		}
	}
	return out
}

// loadChart renders the chart and sorts its objects as loadBase does. With the HPA
// on, the chart leaves spec.replicas to it, so replicas here are the HPA's minimum:
// what the cluster runs, and what the base's replica check looks at.
func loadChart(tb testing.TB, values string, extra ...string) (*deployment, []runtime.Object) {
	tb.Helper()
	objs := renderChart(tb, values, extra...)
	d, err := sortObjects(objs)
	if err != nil {
		tb.Fatal(err)
	}
	if d.dep.Spec.Replicas == nil {
		for _, h := range d.hpas {
			if h.Spec.ScaleTargetRef.Name == d.dep.Name {
				d.dep.Spec.Replicas = h.Spec.MinReplicas
			}
		}
	}
	return d, objs
}

// loadChartContainer is loadChart with the server's container and its settings.
func loadChartContainer(tb testing.TB, values string) (*deployment, []runtime.Object, corev1.Container, map[string]string) {
	tb.Helper()
	d, objs := loadChart(tb, values)
	c, s, err := d.containerSettings()
	if err != nil {
		tb.Fatal(err)
	}
	return d, objs, c, s
}

// ofKind returns the objects of a kind, as unstructured maps.
func ofKind(tb testing.TB, objs []runtime.Object, kind string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind != kind {
			continue
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// sameJSON reports the difference between two values as their JSON, or "" if none.
func sameJSON(what string, want, got any) string {
	w, err1 := json.Marshal(want)
	g, err2 := json.Marshal(got)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("%s: %v", what, err)
	}
	if bytes.Equal(w, g) {
		return ""
	}
	wy, _ := yaml.JSONToYAML(w)
	gy, _ := yaml.JSONToYAML(g)
	return fmt.Sprintf("%s differs from the base:\nbase:\n%s\nchart:\n%s", what, wy, gy)
}

// serverSettings reads the FOOTSTEP_* variables of footstep-authz's flags from the
// flag definitions in cmd/footstep-authz, so a flag added there is known here.
func serverSettings(tb testing.TB) map[string]bool {
	tb.Helper()
	files, err := filepath.Glob("../cmd/footstep-authz/*.go")
	if err != nil {
		tb.Fatal(err)
	}
	flagDef := regexp.MustCompile(`fs\.[A-Za-z]+\(.*?, "([a-z][a-z0-9-]*)", `)
	known := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range flagDef.FindAllSubmatch(src, -1) {
			known[envName(string(m[1]))] = true
		}
	}
	if len(known) < 20 {
		tb.Fatalf("found %d flags in cmd/footstep-authz; the flag pattern no longer matches its source", len(known))
	}
	return known
}

// envSecret returns the Secret and key an env variable of c reads, or "", "".
func envSecret(c corev1.Container, name string) (string, string) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key
		}
	}
	return "", ""
}

// hpaFor returns the HPA that scales d's Deployment, or nil.
func hpaFor(d *deployment) *autoscalingv2.HorizontalPodAutoscaler {
	for _, h := range d.hpas {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.dep.Name {
			return h
		}
	}
	return nil
}

func kindName(o runtime.Object) string {
	name := o.(metav1.Object).GetName()
	if o.GetObjectKind().GroupVersionKind().Kind == "ConfigMap" && strings.HasPrefix(name, appName+"-") {
		name = appName // the base's generated name: footstep-authz-<hash>
	}
	return o.GetObjectKind().GroupVersionKind().Kind + "/" + name
}

func objectNames(objs []runtime.Object) map[string]bool {
	names := map[string]bool{}
	for _, o := range objs {
		names[kindName(o)] = true
	}
	return names
}

// normalDeployment is d's Deployment spec without what may differ from the base:
// selectors, pod labels and annotations (compared on their own), the settings
// ConfigMap's name, the image's tag source, and replicas left to the HPA.
func normalDeployment(d *deployment) appsv1.DeploymentSpec {
	s := *d.dep.Spec.DeepCopy()
	s.Selector = nil
	s.Template.Labels, s.Template.Annotations = nil, nil
	if h := hpaFor(d); h != nil {
		s.Replicas = h.Spec.MinReplicas
	}
	for i := range s.Template.Spec.TopologySpreadConstraints {
		s.Template.Spec.TopologySpreadConstraints[i].LabelSelector = nil
	}
	for i := range s.Template.Spec.Containers {
		for j := range s.Template.Spec.Containers[i].EnvFrom {
			if ref := s.Template.Spec.Containers[i].EnvFrom[j].ConfigMapRef; ref != nil {
				ref.Name = "(settings)"
			}
		}
	}
	return s
}

func want(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func checkServiceMonitor(d *deployment, sm map[string]any) error {
	var errs []error
	if v := str(sm, "apiVersion"); v != "monitoring.coreos.com/v1" {
		errs = append(errs, fmt.Errorf("ServiceMonitor apiVersion %s", v))
	}
	spec, _ := sm["spec"].(map[string]any)
	for k := range spec {
		if !serviceMonitorFields[k] {
			errs = append(errs, fmt.Errorf("ServiceMonitor: unknown field spec.%s", k))
		}
	}
	sel := &metav1.LabelSelector{}
	raw, _ := json.Marshal(spec["selector"])
	if err := json.Unmarshal(raw, sel); err != nil {
		errs = append(errs, fmt.Errorf("ServiceMonitor selector: %w", err))
	}
	ports := map[string]bool{}
	for _, svc := range d.svcs {
		if selects(sel, svc.Labels) {
			for _, p := range svc.Spec.Ports {
				if target, ok := containerPort(d.dep.Spec.Template.Spec.Containers[0], p.TargetPort); ok {
					ports[fmt.Sprintf("%s:%d", p.Name, target)] = true
				}
			}
		}
	}
	admin, _ := d.ports()
	for _, ep := range slice(sm, "spec", "endpoints") {
		if !ports[fmt.Sprintf("%s:%d", str(ep, "port"), admin["admin"])] || str(ep, "path") != "/metrics" {
			errs = append(errs, fmt.Errorf("ServiceMonitor endpoint %v: want port admin (%d) and path /metrics of a selected Service (%v)", ep, admin["admin"], ports))
		}
	}
	if len(slice(sm, "spec", "endpoints")) == 0 {
		errs = append(errs, errors.New("ServiceMonitor has no endpoints"))
	}
	return errors.Join(errs...)
}

// serviceMonitorFields are the ServiceMonitor spec fields the chart may set
// (monitoring.coreos.com/v1).
var serviceMonitorFields = map[string]bool{
	"selector": true, "namespaceSelector": true, "endpoints": true, "jobLabel": true,
	"targetLabels": true, "podTargetLabels": true, "sampleLimit": true,
}
