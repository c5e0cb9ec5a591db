package envoy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
)

type resultLog struct{ last atomic.Pointer[envoy.Result] }

func (l *resultLog) Decided(r *envoy.Result, _ time.Duration) {
	c := *r
	l.last.Store(&c)
}

// TestEngineExpiry: the engine judges expires_at with its own clock
// reading, the one the observer is given as Result.At.
func TestEngineExpiry(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	states := newCheckStates()
	const key = "sk_live_expiring_key"
	for _, k := range []string{key, key + "_suspended"} {
		e := states.keys[authz.APIKey(fuzzActive).Hash()]
		if k != key {
			e.Record.State = authz.StateSuspended
		}
		e.Record.ExpiresAt = at
		states.keys[authz.APIKey(k).Hash()] = e
	}
	var now atomic.Int64
	log := &resultLog{}
	engine, err := envoy.NewEngine(envoy.EngineConfig{States: states, Observer: log,
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key     string
		now     time.Time
		want    authz.Code
		expired bool
	}{
		{key, at.Add(-time.Millisecond), authz.CodeOK, false},
		{key, at, authz.CodeKeyRevoked, true},
		{key, at.Add(time.Hour), authz.CodeKeyRevoked, true},
		{key + "_suspended", at.Add(-time.Millisecond), authz.CodeKeySuspended, false},
		{key + "_suspended", at, authz.CodeKeyRevoked, true},
		{fuzzRevoked, at, authz.CodeKeyRevoked, false},
		{fuzzActive, at.AddDate(50, 0, 0), authz.CodeOK, false},
	}
	for _, tt := range tests {
		now.Store(tt.now.UnixNano())
		r := engine.Authorize(context.Background(), authz.Request{APIKeys: []string{tt.key}})
		if r.Code != tt.want || r.Expired != tt.expired || !r.At.Equal(tt.now) {
			t.Errorf("Authorize(%s at %v) = %v, expired %v, at %v; want %v, expired %v", tt.key, tt.now, r.Code, r.Expired, r.At, tt.want, tt.expired)
		}
		if got := log.last.Load(); got == nil || got.Code != r.Code || got.KeyHash != authz.APIKey(tt.key).Hash() {
			t.Errorf("observer saw %+v; want the result with the key's hash", got)
		}
	}
}
