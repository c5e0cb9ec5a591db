// Package k8s_test checks the deployment artifacts that no cluster runs here: every
// kustomization builds with kubectl and decodes strictly with client-go's scheme, and
// the cross-checks catch the mistakes that would only show on a cluster (a probe on the
// wrong port, a Service selecting nothing, a policy shutting Envoy out).
package k8s_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/footstep/authz/internal/testkit"
)

// crdGroups are the API groups of the custom resources used by the examples. client-go
// does not know them: they decode as unstructured and get checked field by field.
var crdGroups = map[string]bool{
	"gateway.networking.k8s.io": true,
	"gateway.envoyproxy.io":     true,
	"networking.istio.io":       true,
	"security.istio.io":         true,
}

var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// TestKustomizationsBuild builds every kustomization under k8s/ and decodes each object
// strictly: an unknown or misspelt field fails.
func TestKustomizationsBuild(t *testing.T) {
	dirs := kustomizations(t)
	if len(dirs) < 5 {
		t.Errorf("found %d kustomizations (%v); want base and the examples", len(dirs), dirs)
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			if len(objs) == 0 {
				t.Errorf("kubectl kustomize %s: no objects", dir)
			}
		})
	}
}

func TestStrictDecodeRejects(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selectr: {a: b}\n", "unknown field"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n", "replicas"},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n", "no kind"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n", "already set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tt.doc))
			testkit.WantError(t, fmt.Sprintf("decodeStrict(%s)", tt.name), err, tt.wantErr)
		})
	}
}

// kustomizations lists the directories under k8s/ that hold a kustomization.
func kustomizations(tb testing.TB) []string {
	tb.Helper()
	var dirs []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return dirs
}

// build runs kubectl kustomize on dir and decodes the objects. Files that a
// secretGenerator reads and that git ignores (real credentials) are replaced by
// placeholders in a copy of dir.
func build(tb testing.TB, dir string) []runtime.Object {
	tb.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		tb.Skip("kubectl not found: install kubectl (1.27 or later) to check the kustomizations")
	}
	dir = withPlaceholders(tb, dir)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	objs, err := decodeAll(stdout.Bytes())
	if err != nil {
		tb.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	return objs
}

// withPlaceholders returns dir, or a copy of it with placeholder files for the
// generator inputs listed in its .gitignore.
func withPlaceholders(tb testing.TB, dir string) string {
	ignore, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil {
		return dir
	}
	tmp := tb.TempDir()
	if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
		tb.Fatal(err)
	}
	for _, name := range strings.Fields(string(ignore)) {
		if strings.ContainsAny(name, "*/") {
			continue
		}
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("placeholder for "+name+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return tmp
}

func decodeAll(data []byte) ([]runtime.Object, error) {
	return decodeDocs(data, func(doc []byte) (runtime.Object, error) {
		if len(bytes.TrimSpace(doc)) == 0 {
			return nil, nil
		}
		return decodeStrict(doc)
	})
}

// decodeDocs decodes each document of a YAML stream with decode, which
// returns a nil object for a document to skip.
func decodeDocs(data []byte, decode func(doc []byte) (runtime.Object, error)) ([]runtime.Object, error) {
	var objs []runtime.Object
	r := utilyaml.NewYAMLReader(bufioReader(data))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		obj, err := decode(doc)
		if err != nil {
			return nil, err
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
}

// decodeStrict decodes one object with client-go's scheme in strict mode, or as
// unstructured when it is a custom resource of crdGroups.
func decodeStrict(doc []byte) (runtime.Object, error) {
	obj, _, err := strictDecoder.Decode(doc, nil, nil)
	if err == nil {
		return obj, nil
	}
	u := &unstructured.Unstructured{}
	if runtime.IsNotRegisteredError(err) && u.UnmarshalJSON(mustJSON(doc)) == nil && crdGroups[u.GroupVersionKind().Group] {
		return u, nil
	}
	return nil, fmt.Errorf("decode %s: %w", firstLine(doc), err)
}

func firstLine(doc []byte) string {
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "kind:") {
			return strings.TrimSpace(l)
		}
	}
	return "object"
}
