package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// benchAccount is the funded account of every bench key.
const benchAccount = "acct_bench"

// env is what every phase shares: NATS with the bucket, the binaries, the
// cores, the hot keys.
type env struct {
	o        *options
	dir      string
	authzBin string
	selfBin  string
	nats     *events.Embedded
	conn     *events.Conn
	kv       jetstream.KeyValue
	pub      *events.Publisher
	pinLoad  string // core of this process, empty when not pinned
	pinSrv   string // core of the servers
	hot      []authz.APIKey
	logs     *os.File
}

func newEnv(ctx context.Context, o *options) (_ *env, err error) {
	e := &env{o: o}
	defer func() {
		if err != nil {
			e.close() // e, not the nil the error returns
		}
	}()
	if e.dir, err = os.MkdirTemp("", "bench-load-"); err != nil {
		return nil, err
	}
	e.logs = os.Stderr // servers log errors only
	if e.selfBin, err = os.Executable(); err != nil {
		return nil, err
	}
	if e.authzBin = o.authzBin; e.authzBin == "" {
		if e.authzBin, err = buildAuthz(e.dir); err != nil {
			return nil, err
		}
	}
	e.pin()
	e.nats, err = events.StartEmbedded(events.EmbeddedConfig{Addr: "127.0.0.1:-1", Dir: filepath.Join(e.dir, "nats")})
	if err != nil {
		return nil, err
	}
	if e.conn, err = events.Connect(ctx, events.ConnConfig{URLs: []string{e.nats.ClientURL()}, Name: "bench-load"}); err != nil {
		return nil, err
	}
	if e.kv, err = events.OpenBucket(ctx, e.conn.JetStream(), events.BucketConfig{Name: events.DefaultBucket}); err != nil {
		return nil, err
	}
	e.pub = events.NewPublisher(e.conn.JetStream(), e.kv)
	return e, e.seedHot(ctx)
}

// buildAuthz builds footstep-authz with the go command.
func buildAuthz(dir string) (string, error) {
	bin := filepath.Join(dir, "footstep-authz")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/footstep/authz/cmd/footstep-authz")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build footstep-authz (or pass -authz): %w", err)
	}
	return bin, nil
}

// pin puts this process (the load and NATS) on the first core and the
// servers on the last, when taskset is there and there are two cores.
func (e *env) pin() {
	if runtime.NumCPU() < 2 {
		return
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return
	}
	last := strconv.Itoa(runtime.NumCPU() - 1)
	load := "0"
	if runtime.NumCPU() > 2 {
		load = "0-" + strconv.Itoa(runtime.NumCPU()-2)
	}
	if err := exec.Command("taskset", "-a", "-cp", load, strconv.Itoa(os.Getpid())).Run(); err != nil {
		return
	}
	e.pinLoad, e.pinSrv = load, last
}

func (e *env) printMachine() {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	pinned := "not pinned (no taskset or one core)"
	if e.pinSrv != "" {
		pinned = fmt.Sprintf("servers on core %s, load and NATS on core %s", e.pinSrv, e.pinLoad)
	}
	fmt.Printf("machine: %d cores, %s, %s/%s, %s; %s\n", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version(), pinned)
	fmt.Printf("load: %d connections, %d callers, closed loop, %d hot keys; %d rounds of %s\n\n",
		e.o.conns, e.o.callers, e.o.hotKeys, e.o.rounds, e.o.duration)
}

// seedHot writes the funded account and the hot keys.
func (e *env) seedHot(ctx context.Context) error {
	bal, _ := authz.ParseBalance("1000000.00")
	if _, err := e.pub.SetBalance(ctx, benchAccount, bal); err != nil {
		return err
	}
	keys, err := e.putKeys(ctx, "hot", e.o.hotKeys)
	e.hot = keys
	return err
}

// putKeys writes n active keys named after prefix through the Publisher.
func (e *env) putKeys(ctx context.Context, prefix string, n int) ([]authz.APIKey, error) {
	keys := make([]authz.APIKey, n)
	for i := range keys {
		keys[i] = benchKey(prefix, i)
		rec := authz.KeyRecord{KeyID: fmt.Sprintf("key_%s_%d", prefix, i), AccountID: benchAccount, State: authz.StateActive}
		if _, err := e.pub.PutKey(ctx, keys[i].Hash(), rec); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// benchKey is a key of realistic length: sk_live_ and 32 characters.
func benchKey(prefix string, i int) authz.APIKey {
	return authz.APIKey(fmt.Sprintf("sk_live_%s_%0*d", prefix, max(1, 31-len(prefix)), i))
}

// startAuthz starts footstep-authz on NATS with extra flags and waits until
// it is ready.
func (e *env) startAuthz(ctx context.Context, extra ...string) (*server, time.Duration, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	argv := append([]string{e.authzBin, "--nats-url", e.nats.ClientURL(), "--grpc-addr", grpcAddr,
		"--http-addr=", "--admin-addr", admin, "--log-level", "error"}, slices.Concat(extra, e.o.authzArgs)...)
	if e.o.profileDir != "" {
		argv = append(argv, "--pprof") // for the profiles -profile asks for
	}
	s := startServer("footstep-authz", argv, e.pinSrv, e.logs)
	s.cmd.Env = append(cleanEnv(), e.o.authzEnv...)
	s.addr, s.admin = grpcAddr, admin
	if err := s.start(); err != nil {
		return nil, 0, err
	}
	ready, err := s.waitReady(ctx, 5*time.Minute)
	if err == nil {
		err = s.dial(e.o.conns)
	}
	if err != nil {
		s.stop()
		return nil, 0, err
	}
	return s, ready, nil
}

// cleanEnv is this process's environment without FOOTSTEP_ settings, which
// would change the server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FOOTSTEP_") {
			env = append(env, kv)
		}
	}
	return env
}

// startFloor starts the no-op server.
func (e *env) startFloor(ctx context.Context) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := startServer("floor", []string{e.selfBin, "serve-floor", "-addr", addr}, e.pinSrv, e.logs)
	s.addr = addr
	if err := s.start(); err != nil {
		return nil, err
	}
	if _, err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, s.dial(e.o.conns)
}

func (e *env) close() {
	if e.conn != nil {
		e.conn.Close()
	}
	if e.nats != nil {
		e.nats.Shutdown()
	}
	if e.dir != "" {
		if err := os.RemoveAll(e.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "bench-load: clean up:", err)
		}
	}
}
