package k8s_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Defaults of footstep-authz's flags (DESIGN.md), used when a setting is absent.
var flagDefaults = map[string]string{
	"FOOTSTEP_GRPC_ADDR":  ":9001",
	"FOOTSTEP_HTTP_ADDR":  ":9002",
	"FOOTSTEP_ADMIN_ADDR": ":9003",
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }

func mustJSON(doc []byte) []byte {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return doc // UnmarshalJSON reports it
	}
	return js
}

// envName turns a flag into its environment variable: --grpc-addr -> FOOTSTEP_GRPC_ADDR.
func envName(flag string) string {
	return "FOOTSTEP_" + strings.ToUpper(strings.ReplaceAll(strings.TrimLeft(flag, "-"), "-", "_"))
}

// settings resolves the server's settings as the process would see them: flag
// defaults, then the ConfigMaps of envFrom, then env, then command-line flags.
func settings(c corev1.Container, cms map[string]*corev1.ConfigMap) (map[string]string, error) {
	s := map[string]string{}
	for k, v := range flagDefaults {
		s[k] = v
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm := cms[ef.ConfigMapRef.Name]
		if cm == nil {
			return nil, fmt.Errorf("container %s: envFrom ConfigMap %q does not exist", c.Name, ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			s[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			s[e.Name] = e.Value
		}
	}
	args := append(append([]string{}, c.Command...), c.Args...)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, ok := strings.Cut(a, "=")
		if !ok && i+1 < len(args) {
			value = args[i+1]
			i++
		}
		s[envName(name)] = value
	}
	return s, nil
}

// portOf returns the port of a listen address such as ":9001" or "0.0.0.0:9001".
func portOf(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return int32(n), err
}

// containerPort resolves a probe or Service port (a number or a name) against c.
func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// selects reports whether a label selector selects objects with the given labels;
// an empty or invalid selector selects nothing here, since that is always a mistake.
func selects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(lbls))
}

// selectsMap is selects for a Service's plain map selector.
func selectsMap(sel, lbls map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(lbls))
}

func readYAML(tb testing.TB, path string) map[string]any {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return m
}

// str, num and slice read a path in an unstructured object, "" or 0 or nil if absent.
func str(obj map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	s, _ := v.(string)
	return s
}

func num(obj map[string]any, path ...string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

func slice(obj map[string]any, path ...string) []map[string]any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	items, _ := v.([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
