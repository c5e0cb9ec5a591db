package k8s_test

// The container artifacts at the repository root (Dockerfile, compose.yaml) are
// checked here with the other deployment artifacts: no Docker engine runs in CI, so
// what can be checked is that they parse and agree with the server's flags.

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/footstep/authz/internal/testkit"
)

type composeService struct {
	Image       string            `json:"image"`
	Build       any               `json:"build"`
	Command     []string          `json:"command"`
	Entrypoint  []string          `json:"entrypoint"`
	Ports       []string          `json:"ports"`
	Volumes     []string          `json:"volumes"`
	Environment map[string]string `json:"environment"`
}

type composeFile struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

// serverFlags are footstep-authz's flags (DESIGN.md); a compose command may use no other.
var serverFlags = []string{
	"--grpc-addr", "--http-addr", "--admin-addr", "--nats-url", "--embedded-nats-addr", "--embedded-nats-dir",
	"--kv-bucket", "--kv-replicas", "--nats-creds", "--nats-nkey", "--nats-token", "--nats-tls-ca",
	"--nats-tls-cert", "--nats-tls-key", "--nats-user", "--nats-password", "--cache-size", "--negative-ttl",
	"--lookup-timeout", "--shutdown-timeout", "--log-level", "--log-format", "--demo",
}

func TestCompose(t *testing.T) {
	if err := checkCompose(readCompose(t, readFile(t, "../compose.yaml"))); err != nil {
		t.Error(err)
	}
}

func TestComposeRejects(t *testing.T) {
	good := readFile(t, "../compose.yaml")
	tests := []struct{ name, old, new, wantErr string }{
		{"not YAML", "services:", "services: [", "compose.yaml"},
		{"NATS without JetStream", `"-js", `, "", "JetStream"},
		{"NATS store not on a volume", "- nats-data:/data", "- nats-data:/nats", "volume"},
		{"authz on another NATS host", "nats://nats:4222\", \"--grpc", "nats://nats-server:4222\", \"--grpc", "not a service"},
		{"authz flag misspelt", `"--grpc-addr", ":9001"`, `"--grpc-address", ":9001"`, "unknown flag"},
		{"authz gRPC moved, Envoy not told", `"--grpc-addr", ":9001"`, `"--grpc-addr", ":9101"`, "envoy-compose.yaml"},
		{"admin published on the wrong port", `"127.0.0.1:9003:9003"`, `"127.0.0.1:9003:9004"`, "admin"},
		{"upstream moved, Envoy not told", `["--addr", ":8081"]`, `["--addr", ":8082"]`, "echo-upstream"},
		{"Envoy config not mounted", "./envoy/envoy-compose.yaml:/etc/envoy/envoy.yaml:ro", "./envoy/envoy.yaml:/etc/envoy/other.yaml:ro", "not mounted"},
		{"Envoy listener not published", `"8080:8080"`, `"8080:8000"`, "listener"},
		{"no Envoy", "  envoy:\n", "  proxy:\n", `service "envoy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := testkit.ReplaceOnce(t, "compose.yaml", good, tt.old, tt.new)
			var c composeFile
			err := yaml.Unmarshal([]byte(bad), &c)
			if err == nil {
				err = checkCompose(c)
			} else {
				err = fmt.Errorf("compose.yaml: %w", err)
			}
			testkit.WantError(t, fmt.Sprintf("compose checks after %q", tt.name), err, tt.wantErr)
		})
	}
}

func readFile(tb testing.TB, p string) string {
	tb.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

func readCompose(tb testing.TB, text string) composeFile {
	tb.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		tb.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// flagValues reads "--name value" and "--name=value" pairs.
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, value, ok := strings.Cut(args[i], "=")
		if !strings.HasPrefix(name, "-") {
			continue
		}
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value = args[i+1]
			i++
		}
		out[name] = value
	}
	return out
}

func checkCompose(c composeFile) error {
	for _, name := range []string{"nats", "footstep-authz", "echo-upstream", "envoy"} {
		if _, ok := c.Services[name]; !ok {
			return fmt.Errorf("compose.yaml: no service %q", name)
		}
	}
	var errs []error
	nats := c.Services["nats"]
	if !slices.Contains(nats.Command, "-js") && !slices.Contains(nats.Command, "--jetstream") {
		errs = append(errs, errors.New("nats: start it with -js (JetStream)"))
	}
	if dir := flagValues(nats.Command)["-sd"]; dir == "" || !mounted(nats.Volumes, dir) {
		errs = append(errs, fmt.Errorf("nats: the JetStream store %q is not on a volume", dir))
	}
	authz := flagValues(c.Services["footstep-authz"].Command)
	for f := range authz {
		if !slices.Contains(serverFlags, f) {
			errs = append(errs, fmt.Errorf("footstep-authz: unknown flag %s", f))
		}
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(authz["--nats-url"], "nats://"), ":")
	if _, ok := c.Services[host]; !ok || port != "4222" {
		errs = append(errs, fmt.Errorf("footstep-authz: --nats-url %q: %q is not a service on port 4222", authz["--nats-url"], host))
	}
	ports := map[string]string{"grpc": ":9001", "admin": ":9003"}
	for name, f := range map[string]string{"grpc": "--grpc-addr", "admin": "--admin-addr"} {
		if v, ok := authz[f]; ok {
			ports[name] = v
		}
	}
	for _, p := range c.Services["footstep-authz"].Ports {
		if i := strings.LastIndex(p, ":"); i < 0 || ":"+p[i+1:] != ports["admin"] {
			errs = append(errs, fmt.Errorf("footstep-authz: published port %q is not the admin port %s", p, ports["admin"]))
		}
	}
	upstream := flagValues(c.Services["echo-upstream"].Command)["--addr"]
	return errors.Join(append(errs, checkComposeEnvoy(c.Services["envoy"], ports["grpc"], upstream))...)
}

func mounted(volumes []string, dir string) bool {
	return slices.ContainsFunc(volumes, func(v string) bool {
		parts := strings.Split(v, ":")
		return len(parts) >= 2 && parts[1] == dir
	})
}

// checkComposeEnvoy checks that Envoy gets its compose config, publishes its listener,
// and that the config's clusters are the services' names and ports.
func checkComposeEnvoy(envoy composeService, grpcAddr, upstreamAddr string) error {
	cfgPath := flagValues(envoy.Command)["-c"]
	var host string
	for _, v := range envoy.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfgPath && path.Base(parts[0]) == "envoy-compose.yaml" {
			host = parts[0]
		}
	}
	if host == "" {
		return fmt.Errorf("envoy: envoy/envoy-compose.yaml is not mounted at -c %q", cfgPath)
	}
	data, err := os.ReadFile(path.Join("..", host))
	if err != nil {
		return fmt.Errorf("envoy: %w", err)
	}
	var boot map[string]any
	if err := yaml.Unmarshal(data, &boot); err != nil {
		return fmt.Errorf("envoy-compose.yaml: %w", err)
	}
	var errs []error
	listen := fmt.Sprint(num(slice(boot, "static_resources", "listeners")[0], "address", "socket_address", "port_value"))
	if !slices.ContainsFunc(envoy.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+listen) }) {
		errs = append(errs, fmt.Errorf("envoy: the listener port %s is not published (ports %v)", listen, envoy.Ports))
	}
	want := map[string]string{"footstep-authz": grpcAddr, "echo-upstream": upstreamAddr}
	for _, cl := range slice(boot, "static_resources", "clusters") {
		for _, e := range slice(cl, "load_assignment", "endpoints") {
			for _, lb := range slice(e, "lb_endpoints") {
				addr := str(lb, "endpoint", "address", "socket_address", "address")
				port := fmt.Sprint(num(lb, "endpoint", "address", "socket_address", "port_value"))
				w, ok := want[addr]
				if !ok || !strings.HasSuffix(w, ":"+port) {
					errs = append(errs, fmt.Errorf("envoy-compose.yaml: cluster %s goes to %s:%s; the services listen at %v", str(cl, "name"), addr, port, want))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func TestDockerfile(t *testing.T) {
	if err := checkDockerfile(readFile(t, "../Dockerfile")); err != nil {
		t.Error(err)
	}
}

func TestDockerfileRejects(t *testing.T) {
	good := readFile(t, "../Dockerfile")
	tests := []struct{ name, old, new, wantErr string }{
		{"a port not exposed", "EXPOSE 9001 9002 9003", "EXPOSE 9001 9002", "EXPOSE"},
		{"an extra port exposed", "EXPOSE 9001 9002 9003", "EXPOSE 8080 9001 9002 9003", "EXPOSE"},
		{"entrypoint is the CLI", `ENTRYPOINT ["/usr/local/bin/footstep-authz"]`, `ENTRYPOINT ["/usr/local/bin/footstepctl"]`, "ENTRYPOINT"},
		{"entrypoint not copied", `ENTRYPOINT ["/usr/local/bin/footstep-authz"]`, `ENTRYPOINT ["/bin/footstep-authz"]`, "ENTRYPOINT"},
		{"runs as root", "USER 65532:65532", "USER root", "non-root"},
		{"cgo on", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"paths kept", "-trimpath ", "", "-trimpath"},
		{"CLI not built", " ./cmd/footstepctl", "", "footstepctl"},
		{"old Go", "FROM golang:1.26 AS build", "FROM golang:1.22 AS build", "golang:1.26"},
		{"fat final image", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "distroless"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDockerfile(testkit.ReplaceOnce(t, "Dockerfile", good, tt.old, tt.new))
			testkit.WantError(t, fmt.Sprintf("checkDockerfile after %q", tt.name), err, tt.wantErr)
		})
	}
}

// checkDockerfile checks the image: built by Go 1.26 as a static, trimmed binary,
// shipped on a minimal base as a non-root user, with the server's ports and entrypoint.
func checkDockerfile(text string) error {
	var froms, exposed, entry []string
	var user, build, copyTo string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms, user, exposed, entry = append(froms, f[1]), "", nil, nil
		case "USER":
			user = f[1]
		case "EXPOSE":
			exposed = f[1:]
		case "ENTRYPOINT":
			_ = yaml.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, f[0]))), &entry)
		case "RUN":
			if strings.Contains(line, "go build") {
				build = line
			}
		case "COPY":
			if strings.HasPrefix(f[1], "--from=") {
				copyTo = f[len(f)-1]
			}
		}
	}
	var errs []error
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		errs = append(errs, fmt.Errorf("want a golang:1.26 build stage and a final stage, got FROM %v", froms))
	} else if final := froms[len(froms)-1]; !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		errs = append(errs, fmt.Errorf("final stage FROM %s: want distroless/static or scratch", final))
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/footstep-authz", "./cmd/footstepctl"} {
		if !strings.Contains(build, want) {
			errs = append(errs, fmt.Errorf("go build: want %s in %q", want, strings.TrimSpace(build)))
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		errs = append(errs, fmt.Errorf("final stage USER %q: want a numeric non-root user", user))
	}
	if !slices.Equal(exposed, []string{"9001", "9002", "9003"}) {
		errs = append(errs, fmt.Errorf("EXPOSE %v: want the gRPC, HTTP and admin ports 9001 9002 9003", exposed))
	}
	if len(entry) != 1 || path.Base(entry[0]) != "footstep-authz" || path.Dir(entry[0])+"/" != copyTo {
		errs = append(errs, fmt.Errorf("ENTRYPOINT %v: want footstep-authz as copied to %s", entry, copyTo))
	}
	return errors.Join(errs...)
}
