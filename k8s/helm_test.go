package k8s_test

// The Helm chart (charts/footstep-authz) is checked like the kustomize base: it lints
// strictly, renders with its defaults and with values that turn every part on or off,
// every object decodes strictly, the base's cross-checks pass on it, its defaults
// give the base's objects, and bad values fail with the value's name.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/footstep/authz/internal/testkit"
)

func TestHelmLint(t *testing.T) {
	for _, values := range chartValues {
		t.Run("values="+values, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir, "--namespace", releaseNamespace, "--kube-version", helmKubeVersion}
			if values != "" {
				args = append(args, "--values", chartDir+"/"+values)
			}
			if _, err := runHelm(t, args...); err != nil {
				t.Error(err)
			}
		})
	}
}

// skippedChecks are the base's checks that do not apply to a values file, because
// it turns the object they check off.
var skippedChecks = map[string]map[string]bool{
	"ci/all-off-values.yaml": {"pdb": true, "hpa": true, "network policy": true},
}

// TestHelmChart runs the base's cross-checks on the chart's objects, and checks that
// every setting it writes is a flag of footstep-authz.
func TestHelmChart(t *testing.T) {
	known := serverSettings(t)
	for _, values := range chartValues {
		t.Run("values="+values, func(t *testing.T) {
			d, _ := loadChart(t, values)
			for _, c := range baseChecks {
				if skippedChecks[values][c.name] {
					continue
				}
				if err := c.check(d); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			}
			for _, cm := range d.cms {
				for k := range cm.Data {
					if strings.HasPrefix(k, "FOOTSTEP_") && !known[k] {
						t.Errorf("ConfigMap %s: %s is not a flag of footstep-authz", cm.Name, k)
					}
				}
			}
		})
	}
}

// TestHelmMatchesBase checks that the chart's defaults give the base's objects: same
// names, labels, container, pod and settings; only the selectors (the chart adds
// app.kubernetes.io/instance so that two releases do not select each other's pods)
// and the settings ConfigMap's name (the base's carries a hash) differ.
func TestHelmMatchesBase(t *testing.T) {
	base := loadBase(t)
	chart, objs := loadChart(t, "", "--set", "namespace.create=true")
	baseObjs := build(t, "base")

	t.Run("objects", func(t *testing.T) {
		want, got := objectNames(baseObjs), objectNames(objs)
		if diff := sameJSON("kind/name of every object", want, got); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("labels", func(t *testing.T) {
		gotLabels := map[string]map[string]string{}
		for _, o := range objs {
			m := o.(metav1.Object)
			gotLabels[kindName(o)] = m.GetLabels()
		}
		for _, o := range baseObjs {
			for k, v := range o.(metav1.Object).GetLabels() {
				if got := gotLabels[kindName(o)][k]; got != v {
					t.Errorf("%s: label %s = %q; the base has %q", kindName(o), k, got, v)
				}
			}
		}
		for k, v := range base.dep.Spec.Template.Labels {
			if got := chart.dep.Spec.Template.Labels[k]; got != v {
				t.Errorf("pod label %s = %q; the base has %q", k, got, v)
			}
		}
		for k, v := range base.dep.Spec.Template.Annotations {
			if got := chart.dep.Spec.Template.Annotations[k]; got != v {
				t.Errorf("pod annotation %s = %q; the base has %q", k, got, v)
			}
		}
	})
	t.Run("settings", func(t *testing.T) {
		bc, err1 := base.container()
		cc, err2 := chart.container()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		want, err1 := settings(bc, base.cms)
		got, err2 := settings(cc, chart.cms)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if diff := sameJSON("settings", want, got); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("deployment", func(t *testing.T) {
		if diff := sameJSON("Deployment spec", normalDeployment(base), normalDeployment(chart)); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("services", func(t *testing.T) {
		for i := range base.svcs {
			if i >= len(chart.svcs) {
				t.Fatalf("chart has %d Services; the base has %d", len(chart.svcs), len(base.svcs))
			}
			want, got := base.svcs[i].Spec, chart.svcs[i].Spec
			want.Selector, got.Selector = nil, nil
			if diff := sameJSON("Service "+base.svcs[i].Name, want, got); diff != "" {
				t.Error(diff)
			}
		}
	})
	t.Run("pdb hpa networkpolicy serviceaccount", func(t *testing.T) {
		pb, pc := base.pdbs[0].Spec.DeepCopy(), chart.pdbs[0].Spec.DeepCopy()
		pb.Selector, pc.Selector = nil, nil
		nb, nc := base.nps[0].Spec.DeepCopy(), chart.nps[0].Spec.DeepCopy()
		nb.PodSelector, nc.PodSelector = metav1.LabelSelector{}, metav1.LabelSelector{}
		for _, diff := range []string{
			sameJSON("PodDisruptionBudget", pb, pc),
			sameJSON("HorizontalPodAutoscaler", base.hpas[0].Spec, chart.hpas[0].Spec),
			sameJSON("NetworkPolicy", nb, nc),
			sameJSON("ServiceAccount", base.sas[appName].AutomountServiceAccountToken, chart.sas[appName].AutomountServiceAccountToken),
		} {
			if diff != "" {
				t.Error(diff)
			}
		}
	})
}

// TestHelmAllOn checks what the all-on values add: TLS on the server and to NATS,
// user and password from a Secret, extra settings and env, the namespace.
func TestHelmAllOn(t *testing.T) {
	d, objs, c, s := loadChartContainer(t, "ci/all-on-values.yaml")
	spec := d.dep.Spec.Template.Spec
	mounted := func(key, secret string) error {
		if got := secretVolumeFor(spec, c, s[key]); got != secret {
			return fmt.Errorf("%s=%q is in Secret %q; want %q", key, s[key], got, secret)
		}
		return nil
	}
	tests := []struct {
		name string
		err  func() error
	}{
		{"server certificate", func() error {
			return errors.Join(mounted("FOOTSTEP_TLS_CERT", "footstep-authz-tls"), mounted("FOOTSTEP_TLS_KEY", "footstep-authz-tls"))
		}},
		{"client CA", func() error { return mounted("FOOTSTEP_TLS_CLIENT_CA", "envoy-client-ca") }},
		{"NATS CA", func() error { return mounted("FOOTSTEP_NATS_TLS_CA", "nats-ca") }},
		{"NATS client certificate", func() error {
			return errors.Join(mounted("FOOTSTEP_NATS_TLS_CERT", "footstep-authz-nats-client"), mounted("FOOTSTEP_NATS_TLS_KEY", "footstep-authz-nats-client"))
		}},
		{"no creds file", func() error {
			return want(s["FOOTSTEP_NATS_CREDS"] == "", "FOOTSTEP_NATS_CREDS = %q; want none", s["FOOTSTEP_NATS_CREDS"])
		}},
		{"NATS user and password", func() error {
			us, uk := envSecret(c, "FOOTSTEP_NATS_USER")
			ps, pk := envSecret(c, "FOOTSTEP_NATS_PASSWORD")
			return want(us == "footstep-authz-nats-login" && uk == "username" && ps == us && pk == "password",
				"user from %s/%s, password from %s/%s; want footstep-authz-nats-login/username and /password", us, uk, ps, pk)
		}},
		{"readiness without TLS", func() error {
			p := c.ReadinessProbe
			return want(p != nil && p.GRPC == nil && p.HTTPGet != nil && p.HTTPGet.Path == "/readyz",
				"readiness probe %+v; with TLS on the kubelet's gRPC probe fails, want /readyz on the admin port", p)
		}},
		{"gRPC Service port is not h2c", func() error {
			for _, svc := range d.svcs {
				for _, p := range svc.Spec.Ports {
					if p.AppProtocol != nil && *p.AppProtocol == "kubernetes.io/h2c" {
						return fmt.Errorf("Service %s port %s: appProtocol kubernetes.io/h2c (cleartext) with TLS on", svc.Name, p.Name)
					}
				}
			}
			return nil
		}},
		{"NATS egress on the URLs' port", func() error {
			return want(egressOpen(d.nps[0], 4443, corev1.ProtocolTCP) && !egressOpen(d.nps[0], 4222, corev1.ProtocolTCP),
				"NetworkPolicy egress %+v; want NATS on 4443 only", d.nps[0].Spec.Egress)
		}},
		{"extra settings and env", func() error {
			return want(s["FOOTSTEP_LOG_FORMAT"] == "text" && s["GODEBUG"] == "madvdontneed=1" && s["FOOTSTEP_STALE_POLICY"] == "serve" && s["FOOTSTEP_MAX_STALENESS"] == "90s",
				"settings %v; want the all-on values", s)
		}},
		{"image digest", func() error {
			return want(strings.HasSuffix(c.Image, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), "image %s; want the digest", c.Image)
		}},
		{"namespace enforces restricted", func() error {
			ns := ofKind(t, objs, "Namespace")
			return want(len(ns) == 1 && str(ns[0], "metadata", "labels", "pod-security.kubernetes.io/enforce") == "restricted",
				"Namespace %v; want one with pod-security.kubernetes.io/enforce: restricted", ns)
		}},
		{"settings roll the pods", func() error {
			return want(len(d.dep.Spec.Template.Annotations["checksum/config"]) == 64, "pod annotations %v; want checksum/config", d.dep.Spec.Template.Annotations)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestHelmAllOff checks that each optional part really goes away.
func TestHelmAllOff(t *testing.T) {
	d, objs, c, s := loadChartContainer(t, "ci/all-off-values.yaml")
	_, hasHTTP := containerPort(c, intstr.FromString("http"))
	checks := []error{
		want(len(d.hpas)+len(d.pdbs)+len(d.nps) == 0, "HPA, PDB, NetworkPolicy: %d, %d, %d; want none", len(d.hpas), len(d.pdbs), len(d.nps)),
		want(len(d.svcs) == 1, "%d Services; want one (no headless)", len(d.svcs)),
		want(d.dep.Spec.Replicas != nil && *d.dep.Spec.Replicas == 2, "replicas %v; want 2 without the HPA", d.dep.Spec.Replicas),
		want(s["FOOTSTEP_HTTP_ADDR"] == "" && !hasHTTP, "HTTP service %q, container port %v; want off", s["FOOTSTEP_HTTP_ADDR"], hasHTTP),
		want(len(d.dep.Spec.Template.Spec.Volumes) == 1 && s["FOOTSTEP_NATS_CREDS"] == "", "volumes %v; want only tmp", d.dep.Spec.Template.Spec.Volumes),
		want(c.Lifecycle == nil, "lifecycle %v; want none with preStopSleepSeconds 0", c.Lifecycle),
		want(d.dep.Spec.Template.Annotations["prometheus.io/scrape"] == "", "pod annotations %v; want no prometheus.io", d.dep.Spec.Template.Annotations),
		want(len(ofKind(t, objs, "ServiceMonitor"))+len(ofKind(t, objs, "Namespace")) == 0, "a ServiceMonitor or Namespace; want none"),
	}
	for _, svc := range d.svcs {
		for _, p := range svc.Spec.Ports {
			checks = append(checks, want(p.Name != "http", "Service %s has an http port with the HTTP service off", svc.Name))
		}
	}
	if err := errors.Join(checks...); err != nil {
		t.Error(err)
	}
}

// TestHelmDashboard checks that the chart's copy of the dashboard is the one in
// grafana/, and that the ConfigMap carries it unchanged with the sidecar's label.
func TestHelmDashboard(t *testing.T) {
	repo := readFile(t, "../grafana/footstep-authz.json")
	chartCopy := readFile(t, chartDir+"/dashboards/footstep-authz.json")
	if repo != chartCopy {
		t.Fatalf("%s/dashboards/footstep-authz.json differs from grafana/footstep-authz.json: copy it again (cp grafana/footstep-authz.json charts/footstep-authz/dashboards/)", chartDir)
	}
	_, objs := loadChart(t, "ci/all-on-values.yaml")
	for _, cm := range ofKind(t, objs, "ConfigMap") {
		if str(cm, "metadata", "labels", "grafana_dashboard") != "1" {
			continue
		}
		got := str(cm, "data", "footstep-authz.json")
		if got != repo {
			t.Errorf("ConfigMap %s: the dashboard differs from grafana/footstep-authz.json (%d bytes; want %d)", str(cm, "metadata", "name"), len(got), len(repo))
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("ConfigMap %s: the dashboard is not valid JSON", str(cm, "metadata", "name"))
		}
		if ns := str(cm, "metadata", "namespace"); ns != "monitoring" {
			t.Errorf("ConfigMap %s in namespace %q; want grafanaDashboard.namespace monitoring", str(cm, "metadata", "name"), ns)
		}
		return
	}
	t.Error("no ConfigMap labelled grafana_dashboard: \"1\"")
}

// TestHelmServiceMonitor checks that the ServiceMonitor scrapes the admin port of the
// chart's Service, and that its spec has only ServiceMonitor fields.
func TestHelmServiceMonitor(t *testing.T) {
	d, objs := loadChart(t, "ci/all-on-values.yaml")
	sms := ofKind(t, objs, "ServiceMonitor")
	if len(sms) != 1 {
		t.Fatalf("%d ServiceMonitors; want 1", len(sms))
	}
	if err := checkServiceMonitor(d, sms[0]); err != nil {
		t.Error(err)
	}
}

// TestHelmExamples runs the examples' checks against the chart's objects instead of
// the base's: the examples work with a Helm release named footstep-authz too.
func TestHelmExamples(t *testing.T) {
	chart, _ := loadChart(t, "")
	for _, c := range exampleChecks {
		t.Run(c.dir+c.values, func(t *testing.T) {
			if err := c.check(loadExample(t, chart, c.dir, c.values)); err != nil {
				t.Error(err)
			}
		})
	}
}

// valuesCase is values set on the command line and the error they must cause
// ("" for none).
type valuesCase struct {
	name    string
	set     []string
	wantErr string
}

// TestHelmRejects checks that bad values stop helm template (and so helm install)
// with a message that names the value.
func TestHelmRejects(t *testing.T) {
	tests := []valuesCase{
		{"unknown stale policy", []string{"--set", "settings.stalePolicy=maybe"}, "/settings/stalePolicy"},
		{"staleness not a duration", []string{"--set", "settings.maxStaleness=5 minutes"}, "/settings/maxStaleness"},
		{"unknown log level", []string{"--set", "settings.logLevel=loud"}, "/settings/logLevel"},
		{"unknown mode", []string{"--set", "settings.mode=audit"}, "/settings/mode"},
		{"cache size without a number", []string{"--set", "settings.cacheSize=lots"}, "/settings/cacheSize"},
		{"misspelt setting", []string{"--set", "settings.maxStalenes=1m"}, "'maxStalenes' not allowed"},
		{"misspelt top-level value", []string{"--set", "replicas=3"}, "'replicas' not allowed"},
		{"empty NATS URL", []string{"--set", "nats.url="}, "/nats/url"},
		{"NATS URL with a space", []string{"--set", "nats.url=nats://a:4222 nats://b:4222"}, "/nats/url"},
		{"replicas not a number", []string{"--set-string", "replicaCount=two"}, "/replicaCount"},
		{"bucket replicas above 5", []string{"--set", "nats.kvReplicas=7"}, "/nats/kvReplicas"},
		{"privileged port", []string{"--set", "ports.grpc=80"}, "/ports/grpc"},
		{"two ports the same", []string{"--set", "ports.http=9001"}, "must differ"},
		{"two NATS authentications", []string{"--set", "nats.auth.tokenSecret.name=nats-token"}, "at most one"},
		{"secret name not a DNS name", []string{"--set", "nats.auth.credsSecret.name=Footstep_NATS"}, "/nats/auth/credsSecret/name"},
		{"bad image digest", []string{"--set", "image.digest=sha256:xyz"}, "/image/digest"},
		{"extra setting not FOOTSTEP_", []string{"--set", "extraSettings.LOG_LEVEL=debug"}, "/extraSettings"},
		{"mutual TLS without a certificate", []string{"--set", "tls.clientCASecret.name=ca"}, "needs tls.secretName"},
		{"PDB blocks drains", []string{"--set", "pdb.minAvailable=2"}, "pdb.minAvailable (2) must be below the replicas (2)"},
		{"HPA max below min", []string{"--set", "autoscaling.maxReplicas=1"}, "autoscaling.maxReplicas (1) is below"},
		{"no memory limit", []string{"--set", "resources.limits.memory=null"}, "/resources/limits"},
		// Found by the server-side dry run: the API server refuses such a Deployment.
		{"preStop pause longer than the grace period", []string{"--set", "preStopSleepSeconds=40"}, "preStopSleepSeconds (40) must be below terminationGracePeriodSeconds (30)"},
		{"existing service account unnamed", []string{"--set", "serviceAccount.create=false"}, "serviceAccount.name is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runHelm(t, templateArgs("", tt.set...)...)
			testkit.WantError(t, fmt.Sprintf("helm template %v", tt.set), err, tt.wantErr)
		})
	}
	t.Run("lint fails too", func(t *testing.T) {
		_, err := runHelm(t, "lint", "--strict", chartDir, "--kube-version", helmKubeVersion, "--set", "settings.stalePolicy=maybe")
		if err == nil || !strings.Contains(err.Error(), "/settings/stalePolicy") {
			t.Errorf("helm lint with a bad value = %v; want an error naming /settings/stalePolicy", err)
		}
	})
}

// TestHelmRejectsCrossChecks proves the base's cross-checks bite on the chart's
// output too: values that render but would break on a cluster.
func TestHelmRejectsCrossChecks(t *testing.T) {
	tests := []valuesCase{
		{"cache larger than half the memory limit", []string{"--set", "settings.cacheSize=512MiB"}, "FOOTSTEP_CACHE_SIZE"},
		{"bucket not replicated", []string{"--set", "nats.kvReplicas=1"}, "FOOTSTEP_KV_REPLICAS"},
		{"runs as root", []string{"--set", "podSecurityContext.runAsNonRoot=false"}, "runAsNonRoot"},
		// The chart opens egress on the ports of the NATS URLs: moving NATS is one value.
		{"NATS moved to another port", []string{"--set", "nats.url=nats://nats.nats:4223"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := loadChart(t, "", tt.set...)
			err := runBaseChecks(d)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("checks after %v = %v; want none", tt.set, err)
				}
				return
			}
			testkit.WantError(t, fmt.Sprintf("checks after %v", tt.set), err, tt.wantErr)
		})
	}
}

// TestHelmValuesDocumented checks that every top-level value has a comment in values.yaml
// and a row in the chart's README.
func TestHelmValuesDocumented(t *testing.T) {
	values := readYAML(t, chartDir+"/values.yaml")
	readme := readFile(t, chartDir+"/README.md")
	for k := range values {
		if !strings.Contains(readme, "`"+k) {
			t.Errorf("value %s is not in %s/README.md", k, chartDir)
		}
	}
	if _, err := os.Stat(chartDir + "/values.schema.json"); err != nil {
		t.Error(err)
	}
}

// TestHelmNotes renders NOTES.txt, which helm template leaves out, from a copy of the
// chart where it is also a template: a mistake in it would only show at install.
func TestHelmNotes(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes := readFile(t, chartDir+"/templates/NOTES.txt")
	wrapped := "notes: |\n  " + strings.ReplaceAll(notes, "\n", "\n  ") + "\n"
	if err := os.WriteFile(dir+"/templates/notes-check.yaml", []byte(wrapped), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, values := range chartValues {
		t.Run("values="+values, func(t *testing.T) {
			args := []string{"template", releaseName, dir, "--namespace", releaseNamespace, "--kube-version", helmKubeVersion, "--show-only", "templates/notes-check.yaml"}
			if values != "" {
				args = append(args, "--values", chartDir+"/"+values)
			}
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"rollout status deploy/footstep-authz", "footstep-authz.footstep.svc.cluster.local:9001"} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("NOTES.txt with values %q does not say %q:\n%s", values, want, out)
				}
			}
		})
	}
}
