package server

import (
	"io"
	"log/slog"
	"time"

	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/events"
)

// Defaults of Config, shared with the command's flags.
const (
	DefaultGRPCAddr         = ":9001"
	DefaultHTTPAddr         = ":9002"
	DefaultAdminAddr        = ":9003"
	DefaultEmbeddedNATSAddr = "127.0.0.1:4222"
	DefaultEmbeddedNATSDir  = "./data/nats"
	DefaultShutdownTimeout  = 10 * time.Second
	// DefaultMaxStaleness is how long cached states are trusted without a
	// successful exchange with JetStream: long enough to ride out a NATS
	// rolling restart or a short partition without a single 503, short
	// enough that a key revoked meanwhile stops working within minutes
	// everywhere.
	DefaultMaxStaleness = 5 * time.Minute
	// MinMaxStaleness keeps MaxStaleness above the health loop's period.
	MinMaxStaleness = time.Second
	// MinUsageInterval and MaxUsageInterval bound UsageInterval: one
	// summary per key per second at most, and a day at most between two.
	MinUsageInterval = time.Second
	MaxUsageInterval = 24 * time.Hour
	// DefaultLookupBudget bounds KV lookups for misses: far above what real
	// traffic misses once the cache is warm, and far below what one NATS
	// server answers.
	DefaultLookupBudget = 10000
)

// Modes and staleness policies.
const (
	ModeEnforce = "enforce" // deny what the rules deny
	ModeShadow  = "shadow"  // allow everything, report what would be denied
	StaleDeny   = "deny"    // past MaxStaleness: 503 and not ready
	StaleServe  = "serve"   // past MaxStaleness: keep serving cached states
)

// Config is everything a Server is told at start. Start from DefaultConfig;
// the command fills it from flags and validates it with messages that name
// the flags.
type Config struct {
	// GRPCAddr is the listen address of ext_authz v3 and grpc.health.v1.
	GRPCAddr string
	// HTTPAddr is the listen address of the HTTP authorization service;
	// empty turns it off.
	HTTPAddr string
	// HTTPPathPrefix is stripped from the HTTP service's request path.
	HTTPPathPrefix string
	// AdminAddr is the listen address of /metrics, /healthz and /readyz.
	AdminAddr string
	// NATSURL lists the NATS servers, comma-separated; empty starts an
	// embedded NATS server with JetStream.
	NATSURL string
	// EmbeddedNATSAddr and EmbeddedNATSDir are where the embedded server
	// listens and stores JetStream data.
	EmbeddedNATSAddr string
	EmbeddedNATSDir  string
	// KVBucket is the bucket of key and account records, created with
	// KVReplicas replicas when missing.
	KVBucket   string
	KVReplicas int
	// NATS holds credentials and TLS of the NATS connection; its URLs are
	// set from NATSURL or the embedded server.
	NATS events.ConnConfig
	// CacheSize is the memory budget of the cache, in bytes.
	CacheSize int64
	// DeriveMemoryLimit sets the Go runtime's soft memory limit from
	// CacheSize and the size of the key index, and raises it as the index
	// grows. The command sets it unless GOMEMLIMIT is set. The limit is the
	// process's: leave it off where servers share a process (tests).
	DeriveMemoryLimit bool
	// SetGCPercent sets the collector's target to DefaultGCPercent. The
	// command sets it unless GOGC is set; like DeriveMemoryLimit, it is the
	// process's.
	SetGCPercent bool
	// NegativeTTL is how long an unknown key is remembered as unknown.
	NegativeTTL time.Duration
	// LookupTimeout bounds one KV lookup on a miss.
	LookupTimeout time.Duration
	// LookupBudget bounds KV lookups per second for misses; 0: no bound.
	LookupBudget float64
	// ShutdownTimeout bounds how long a stop waits for calls in flight.
	ShutdownTimeout time.Duration
	// MaxStaleness is how long cached states are trusted without a
	// successful exchange with JetStream; then StalePolicy applies.
	MaxStaleness time.Duration
	// StalePolicy is StaleDeny or StaleServe.
	StalePolicy string
	// Mode is ModeEnforce or ModeShadow.
	Mode string
	// TLSCert, TLSKey and TLSClientCA are PEM files for the gRPC and HTTP
	// ports; with TLSClientCA, client certificates are required.
	TLSCert, TLSKey, TLSClientCA string
	// Demo seeds the demo keys into the embedded server and prints them.
	Demo bool
	// GRPCReflection serves gRPC server reflection.
	GRPCReflection bool
	// Pprof serves the Go runtime's profiles under /debug/pprof/ on the
	// admin port, for profiling under load. Off by default.
	Pprof bool
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Stdout receives the demo key table; nil discards it.
	Stdout io.Writer
	// Version is reported in the metrics' build info.
	Version string
	// UsageTracking records when each key was last decided on and how
	// often by code, and publishes it (footstep.events.key_used and the
	// usage bucket). Default true.
	UsageTracking bool
	// UsageBucket is the key-value bucket of usage records, created when
	// missing. Default events.DefaultUsageBucket.
	UsageBucket string
	// UsageMaxKeys bounds the keys tracked per interval; further keys are
	// counted as overflow. Default events.DefaultUsageMaxKeys.
	UsageMaxKeys int
	// UsageInterval is how often usage is published: at most one summary
	// per key per interval. Default events.DefaultUsageInterval (a minute).
	UsageInterval time.Duration
	// Replica names this process in usage summaries; default the host name.
	Replica string

	// wrapStates, set only by tests, wraps the cache that Checks read from.
	wrapStates func(envoy.States) envoy.States
	// now, set only by tests, is the engine's clock (expiry); nil: time.Now.
	now func() time.Time
	// buildGate, set only by tests, holds the watcher's background key
	// index build until it is closed.
	buildGate <-chan struct{}
}

// DefaultConfig returns the configuration of a server started with no flags.
func DefaultConfig() Config {
	return Config{
		GRPCAddr: DefaultGRPCAddr, HTTPAddr: DefaultHTTPAddr, AdminAddr: DefaultAdminAddr,
		EmbeddedNATSAddr: DefaultEmbeddedNATSAddr, EmbeddedNATSDir: DefaultEmbeddedNATSDir,
		KVBucket: events.DefaultBucket, KVReplicas: 1,
		CacheSize: cache.DefaultMaxBytes, NegativeTTL: cache.DefaultNegativeTTL, LookupTimeout: cache.DefaultLoadTimeout,
		LookupBudget: DefaultLookupBudget, ShutdownTimeout: DefaultShutdownTimeout,
		MaxStaleness: DefaultMaxStaleness, StalePolicy: StaleDeny, Mode: ModeEnforce,
		UsageTracking: true, UsageBucket: events.DefaultUsageBucket,
		UsageMaxKeys: events.DefaultUsageMaxKeys, UsageInterval: events.DefaultUsageInterval,
	}
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.NATSURL != "" {
		c.NATS.URLs = []string{c.NATSURL}
	}
	if c.UsageBucket == "" {
		c.UsageBucket = events.DefaultUsageBucket
	}
}
