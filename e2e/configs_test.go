package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The loopback addresses in the shipped example configurations, which the
// end-to-end tests replace with their own.
const (
	exampleProxyAddr    = "127.0.0.1:8080"
	exampleAuthzAddr    = "127.0.0.1:9002"
	exampleUpstreamAddr = "127.0.0.1:8081"
)

// examplesDir holds the shipped proxy configurations.
var examplesDir = filepath.Join("..", "examples", "proxies")

// exampleConfig returns examples/proxies/file with each old address replaced by
// its new one; each must occur.
func exampleConfig(tb testing.TB, file string, replace map[string]string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, file))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(data)
	for old, new := range replace {
		if !strings.Contains(s, old) {
			tb.Fatalf("%s no longer contains %s: update the e2e tests", file, old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	return s
}

// TestExampleConfigsNameTheAddresses checks that every shipped example names the same
// addresses, so that the end-to-end tests run each of them as it ships.
func TestExampleConfigsNameTheAddresses(t *testing.T) {
	for _, file := range []string{"nginx.conf", "Caddyfile"} {
		exampleConfig(t, file, map[string]string{exampleProxyAddr: "", exampleAuthzAddr: "", exampleUpstreamAddr: ""})
	}
}

// traefikDynamic is the part of Traefik's dynamic configuration the example uses.
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			EntryPoints []string `json:"entryPoints"`
			Rule        string   `json:"rule"`
			Middlewares []string `json:"middlewares"`
			Service     string   `json:"service"`
			Priority    int      `json:"priority"`
		} `json:"routers"`
		Middlewares map[string]struct {
			ForwardAuth *struct {
				Address             string   `json:"address"`
				TrustForwardHeader  bool     `json:"trustForwardHeader"`
				AuthResponseHeaders []string `json:"authResponseHeaders"`
			} `json:"forwardAuth"`
			Headers *struct {
				CustomRequestHeaders map[string]string `json:"customRequestHeaders"`
			} `json:"headers"`
		} `json:"middlewares"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct {
					URL string `json:"url"`
				} `json:"servers"`
			} `json:"loadBalancer"`
		} `json:"services"`
	} `json:"http"`
}

// TestTraefikExample parses the Traefik example strictly (Traefik is not run
// here) and checks its wiring: every router sets the surface, then asks
// footstep-authz, then removes the credentials of its surface; the identity
// headers are copied from the answer; every reference resolves.
func TestTraefikExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(examplesDir, "traefik-dynamic.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg traefikDynamic
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("traefik-dynamic.yaml: %v", err)
	}
	h := cfg.HTTP
	if len(h.Routers) != 2 {
		t.Fatalf("routers %v; want footstep-mcp and footstep-api", slices.Sorted(maps.Keys(h.Routers)))
	}
	for name, r := range h.Routers {
		surface := "api"
		wantStrip := []string{"X-Api-Key"}
		if strings.Contains(r.Rule, "/mcp") {
			surface, wantStrip = "mcp", []string{"Authorization", "X-Api-Key"}
		}
		if len(r.Middlewares) != 3 {
			t.Errorf("router %s: middlewares %v; want surface, authz, strip", name, r.Middlewares)
			continue
		}
		if _, ok := h.Services[r.Service]; !ok {
			t.Errorf("router %s: service %q is not defined", name, r.Service)
		}
		first, auth, last := h.Middlewares[r.Middlewares[0]], h.Middlewares[r.Middlewares[1]], h.Middlewares[r.Middlewares[2]]
		if first.Headers == nil || first.Headers.CustomRequestHeaders["X-Footstep-Surface"] != surface {
			t.Errorf("router %s: first middleware %q must set X-Footstep-Surface: %s", name, r.Middlewares[0], surface)
		}
		fa := auth.ForwardAuth
		if fa == nil || fa.Address != "http://"+exampleAuthzAddr+"/" || fa.TrustForwardHeader ||
			!slices.Equal(fa.AuthResponseHeaders, []string{"X-Footstep-Account-Id", "X-Footstep-Key-Id"}) {
			t.Errorf("router %s: second middleware %q must be forwardAuth to http://%s/, trustForwardHeader false, copying the identity headers; got %+v",
				name, r.Middlewares[1], exampleAuthzAddr, fa)
		}
		var strip []string
		if last.Headers != nil {
			for k, v := range last.Headers.CustomRequestHeaders {
				if v == "" {
					strip = append(strip, k)
				}
			}
		}
		if slices.Sort(strip); !slices.Equal(strip, wantStrip) {
			t.Errorf("router %s: last middleware %q removes %v; want %v", name, r.Middlewares[2], strip, wantStrip)
		}
	}
	for name, s := range h.Services {
		for _, srv := range s.LoadBalancer.Servers {
			if srv.URL != "http://"+exampleUpstreamAddr {
				t.Errorf("service %s: server %s; want http://%s", name, srv.URL, exampleUpstreamAddr)
			}
		}
	}
}
