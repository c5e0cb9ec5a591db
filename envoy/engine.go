package envoy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/footstep/authz/authz"
)

// States looks key and account states up, from memory when it can. A failed
// lookup returns an Unreadable entry and the error.
type States interface {
	Key(ctx context.Context, h authz.KeyHash) (authz.KeyEntry, error)
	Account(ctx context.Context, id string) (authz.AccountEntry, error)
}

// ExposureReporter is told when a known key shows up in a query string, so
// that its owner can be asked to rotate it.
type ExposureReporter interface {
	ReportExposure(ctx context.Context, h authz.KeyHash, rec authz.KeyRecord)
}

// Freshness tells whether cached states may still be trusted. When they may
// not (cut off from NATS for longer than the staleness policy allows), every
// decision that needs a state is CodeUnavailable.
type Freshness interface {
	Fresh() bool
}

// Observer is told of every decision, for metrics.
type Observer interface {
	Decided(r *Result, elapsed time.Duration)
}

// Result is one authorization: the decision and what the responses need.
type Result struct {
	Code       authz.Code
	Surface    authz.Surface
	Credential authz.Credential
	Key        authz.KeyRecord // the key's record when it was found
	KeyHash    authz.KeyHash   // the credential's hash when it was looked up
	Err        error           // why a state could not be read, for logs
	// At is when the request was decided: the engine's one clock reading,
	// which also judged the key's expiry.
	At time.Time
	// Expired is set when the key answered key_revoked only because its
	// expires_at had passed.
	Expired bool
	// Shadow is set in shadow mode: Code is what enforcement would have
	// answered, and the request is allowed all the same.
	Shadow bool
}

// Allowed reports whether the request goes upstream: the decision is OK, or
// the engine runs in shadow mode.
func (r *Result) Allowed() bool { return r.Shadow || r.Code == authz.CodeOK }

// ErrStale is the reason given when states are too old to trust.
var ErrStale = errors.New("key states are stale: cut off from NATS beyond --max-staleness")

// EngineConfig configures an Engine.
type EngineConfig struct {
	// States answers lookups. Required.
	States States
	// Exposures is told of keys leaked in query strings. Optional.
	Exposures ExposureReporter
	// Observer is told of every decision. Optional.
	Observer Observer
	// Freshness, when set, is asked before every lookup. Optional.
	Freshness Freshness
	// Shadow evaluates every request but allows it, reporting what would
	// have been denied (rollout mode).
	Shadow bool
	// Logger receives FlushLogs' lines. The Server and HTTPHandler write
	// their own lines to the logger each is given. Default: discard.
	Logger *slog.Logger
	// LogInterval bounds the lines requests cause: at most one per kind
	// (unreadable state, denial, shadow denial, unknown surface) and code per
	// interval, each with the number held back since the previous one as
	// "suppressed". Default: DefaultLogInterval (one second).
	LogInterval time.Duration
	// Now tells the time: when a key's expires_at has passed, how long a
	// decision took, and LogInterval. It is read once per request.
	// Default: time.Now.
	Now func() time.Time
}

// Engine applies the rules to requests. Build it with NewEngine.
type Engine struct {
	now       func() time.Time
	states    States
	exposures ExposureReporter
	observer  Observer
	freshness Freshness
	shadow    bool
	log       *slog.Logger
	logs      *logLimiter
}

// NewEngine returns an Engine, or an error if the config is incomplete.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.States == nil {
		return nil, errors.New("envoy: engine needs States")
	}
	if cfg.LogInterval < 0 {
		return nil, fmt.Errorf("envoy: log interval %v is negative", cfg.LogInterval)
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{now: cfg.Now, states: cfg.States, exposures: cfg.Exposures, observer: cfg.Observer,
		freshness: cfg.Freshness, shadow: cfg.Shadow, log: cfg.Logger,
		logs: newLogLimiter(cfg.Now, cfg.LogInterval)}, nil
}

// Authorize decides for one request. It always returns a result; a state that
// cannot be read yields CodeUnavailable.
func (e *Engine) Authorize(ctx context.Context, req authz.Request) Result {
	r := Result{Surface: req.Surface, Credential: authz.Extract(req), Shadow: e.shadow, At: e.now()}
	r.Code = r.Credential.Code
	switch r.Code {
	case authz.CodeOK:
		e.lookup(ctx, &r)
	case authz.CodeKeyInQuery:
		e.reportExposure(ctx, r.Credential.QueryKey)
	}
	if e.observer != nil {
		e.observer.Decided(&r, e.now().Sub(r.At))
	}
	return r
}

func (e *Engine) lookup(ctx context.Context, r *Result) {
	if e.freshness != nil && !e.freshness.Fresh() {
		r.Code, r.Err = authz.CodeUnavailable, ErrStale
		return
	}
	r.KeyHash = r.Credential.Key.Hash()
	key, err := e.states.Key(ctx, r.KeyHash)
	var account authz.AccountEntry
	if err == nil && authz.NeedsAccount(key) && !key.Record.ExpiredAt(r.At) {
		account, err = e.states.Account(ctx, key.Record.AccountID)
	}
	r.Code = authz.DecideAt(r.Credential, key, account, r.At)
	if key.Presence == authz.Present {
		r.Key = key.Record
		r.Expired = r.Code == authz.CodeKeyRevoked && key.Record.State != authz.StateRevoked
	}
	r.Err = err
}

// reportExposure publishes the exposure of a well-formed key found in a
// query string, when the key is known. The denial does not wait on it longer
// than the lookup.
func (e *Engine) reportExposure(ctx context.Context, leaked authz.APIKey) {
	if e.exposures == nil || leaked == "" {
		return
	}
	h := leaked.Hash()
	key, err := e.states.Key(ctx, h)
	if err != nil || key.Presence != authz.Present {
		return
	}
	e.exposures.ReportExposure(ctx, h, key.Record)
}
