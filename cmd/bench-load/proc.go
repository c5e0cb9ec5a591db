package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go runs on.
const clockTicks = 100

// server is one ext_authz server running as a subprocess.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // gRPC
	admin   string // footstep-authz's admin address; empty for the floor
	started time.Time
	exited  chan struct{} // closed when the process has ended
	clients []authv3.AuthorizationClient
	conns   []*grpc.ClientConn
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServer starts argv, pinned to core when pin is set, with its output
// in log.
func startServer(name string, argv []string, pin string, log *os.File) *server {
	if pin != "" {
		argv = append([]string{"taskset", "-c", pin}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	return &server{name: name, cmd: cmd}
}

func (s *server) start() error {
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady polls until the server answers: /readyz for footstep-authz, a
// Check for the floor. It returns the time since start.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return 0, fmt.Errorf("%s exited: %s (see its log)", s.name, s.cmd.ProcessState)
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if s.ready(ctx) {
			return time.Since(s.started), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not ready after %s", s.name, timeout)
}

func (s *server) ready(ctx context.Context) bool {
	if s.admin != "" {
		resp, err := http.Get("http://" + s.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// dial opens n connections to the server.
func (s *server) dial(n int) error {
	for range n {
		cc, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		s.conns = append(s.conns, cc)
		s.clients = append(s.clients, authv3.NewAuthorizationClient(cc))
	}
	return nil
}

// stop closes the connections and ends the process.
func (s *server) stop() {
	for _, cc := range s.conns {
		cc.Close()
	}
	s.conns, s.clients = nil, nil
	if s.exited == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// pid is the server's process: taskset execs it, so the pid is the same.
func (s *server) pid() int { return s.cmd.Process.Pid }

// cpu returns the CPU time the server used so far.
func (s *server) cpu() time.Duration {
	if d, ok := schedCPU(s.pid()); ok {
		return d
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid()))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// schedCPU returns the time the threads of process pid have spent on a CPU,
// in nanoseconds, from the scheduler's statistics: /proc/<pid>/stat counts
// in 10 ms ticks, too coarse for a slice of a second. Go's threads live as
// long as the process, so the sum over the live ones is the process's.
func schedCPU(pid int) (time.Duration, bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, false
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread is gone
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		sum += ns
	}
	return time.Duration(sum), sum > 0
}

// rss returns the server's resident set size in bytes.
func (s *server) rss() uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gauge reads one unlabelled sample from /metrics; false when the server
// does not export it.
func (s *server) gauge(name string) (float64, bool) {
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// metric sums the samples of a Prometheus counter from /metrics whose name
// and labels start with prefix.
func (s *server) metric(prefix string) float64 {
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}
