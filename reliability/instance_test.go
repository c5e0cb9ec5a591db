package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/footstep/authz/authz"
	authzserver "github.com/footstep/authz/internal/server"
	"github.com/footstep/authz/internal/testkit"
)

// instanceConfig says how to start one footstep-authz.
type instanceConfig struct {
	URLs     []string
	User     string // NATS user name, with Password
	Password string
	Replicas int
	// MaxStaleness is --max-staleness (with --stale-policy deny); default
	// the server's.
	MaxStaleness time.Duration
	// CacheSize is --cache-size; default 8 MiB.
	CacheSize int64
	Logger    *slog.Logger
}

// instance is one footstep-authz started through the same package that
// cmd/footstep-authz runs (internal/server), with its gRPC port on loopback
// and a real gRPC client.
type instance struct {
	tb     testing.TB
	srv    *authzserver.Server
	client authv3.AuthorizationClient
	admin  string // base URL of the admin port

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	cc       *grpc.ClientConn
}

// startInstance starts an instance; it does not wait for the first sync
// (see waitReady). It stops when the test ends.
func startInstance(tb testing.TB, cfg instanceConfig) *instance {
	tb.Helper()
	in := &instance{tb: tb, done: make(chan struct{})}
	tb.Cleanup(in.stop)
	sc := authzserver.DefaultConfig()
	sc.GRPCAddr, sc.HTTPAddr, sc.AdminAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	sc.NATSURL = strings.Join(cfg.URLs, ",")
	sc.NATS.User, sc.NATS.Password = cfg.User, cfg.Password
	sc.KVReplicas = max(cfg.Replicas, 1)
	sc.CacheSize = 8 << 20
	if cfg.CacheSize > 0 {
		sc.CacheSize = cfg.CacheSize
	}
	sc.Logger = cfg.Logger
	if cfg.MaxStaleness > 0 {
		sc.MaxStaleness = cfg.MaxStaleness
	}
	var err error
	in.srv, err = startServer(sc)
	if err != nil {
		tb.Fatalf("start footstep-authz: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		defer close(in.done)
		if err := in.srv.Run(ctx); err != nil {
			tb.Errorf("footstep-authz: %v", err)
		}
	}()
	in.admin = "http://" + in.srv.Addr("admin").String()
	in.cc, err = grpc.NewClient(in.srv.Addr("grpc").String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	in.client = authv3.NewAuthorizationClient(in.cc)
	return in
}

// startServer starts a server, retrying while a NATS cluster settles (the
// bucket cannot be created before JetStream has a meta leader).
func startServer(cfg authzserver.Config) (*authzserver.Server, error) {
	var (
		srv *authzserver.Server
		err error
	)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv, err = authzserver.New(ctx, cfg)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return srv, err
		}
		time.Sleep(100 * time.Millisecond) // a retry pause, not a wait for an effect
	}
}

// waitReady waits for the first full sync.
func (in *instance) waitReady(within time.Duration) {
	in.tb.Helper()
	testkit.Eventually(in.tb, within, "instance synced", func() bool { return in.srv.Status().Synced })
}

// status returns the instance's server status.
func (in *instance) status() authzserver.Status { return in.srv.Status() }

// stop stops the instance: gRPC client, then the server.
func (in *instance) stop() {
	in.stopOnce.Do(func() {
		if in.cc != nil {
			in.cc.Close()
		}
		if in.cancel != nil {
			in.cancel()
			<-in.done
		}
	})
}

// metric returns the sum of the samples of a counter or gauge family on the
// instance's /metrics, whatever their labels, as a whole number.
func (in *instance) metric(name string) int64 {
	in.tb.Helper()
	fams := in.scrape()
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return int64(sum)
}

// maxLag returns an upper bound of the largest change lag the instance
// measured: the smallest histogram bucket holding every observation.
func (in *instance) maxLag() time.Duration {
	in.tb.Helper()
	f, ok := in.scrape()["footstep_authz_change_lag_seconds"]
	if !ok || len(f.GetMetric()) == 0 {
		return 0
	}
	h := f.GetMetric()[0].GetHistogram()
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() == h.GetSampleCount() {
			return time.Duration(b.GetUpperBound() * float64(time.Second))
		}
	}
	return time.Duration(math.Inf(1))
}

func (in *instance) scrape() map[string]*dto.MetricFamily {
	in.tb.Helper()
	resp, err := http.Get(in.admin + "/metrics")
	if err != nil {
		in.tb.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		in.tb.Fatalf("scrape: %v", err)
	}
	return fams
}

// codeByName maps a denial body's code back to its authz.Code.
var codeByName = func() map[string]authz.Code {
	m := map[string]authz.Code{}
	for _, c := range authz.Codes {
		m[c.String()] = c
	}
	return m
}()

// check asks the instance over gRPC about key on the API surface.
func (in *instance) check(ctx context.Context, key string) (authz.Code, error) {
	resp, err := in.client.Check(ctx, testkit.KeyCheck(key))
	if err != nil {
		return authz.CodeUnavailable, err
	}
	return codeOf(resp)
}

// codeOf2 asks in about key, reading a transport error as 503.
func codeOf2(in *instance, key string) authz.Code {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := in.check(ctx, key)
	if err != nil {
		return authz.CodeUnavailable
	}
	return got
}

// codeOf reads the decision of a response, checking that its parts agree.
func codeOf(resp *authv3.CheckResponse) (authz.Code, error) {
	if resp.GetStatus() == nil {
		return authz.CodeUnavailable, fmt.Errorf("response without a status")
	}
	if resp.GetStatus().GetCode() == 0 {
		if resp.GetOkResponse() == nil {
			return authz.CodeUnavailable, fmt.Errorf("OK status without an OK response")
		}
		return authz.CodeOK, nil
	}
	d := resp.GetDeniedResponse()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
		return authz.CodeUnavailable, fmt.Errorf("denial body %q: %w", d.GetBody(), err)
	}
	c, ok := codeByName[body.Error.Code]
	if !ok || c == authz.CodeOK || int(d.GetStatus().GetCode()) != c.Status() {
		return authz.CodeUnavailable, fmt.Errorf("denial %q with status %d", body.Error.Code, d.GetStatus().GetCode())
	}
	return c, nil
}
