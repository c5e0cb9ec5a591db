package envoy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
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
	states := newStates(t)
	const key = "sk_live_expiring_key"
	for _, k := range []string{key, key + "_suspended"} {
		e, _ := states.Key(context.Background(), authz.APIKey(keyActive).Hash())
		if k != key {
			e.Record.State = authz.StateSuspended
		}
		e.Record.ExpiresAt = at
		states.PutKey(authz.APIKey(k).Hash(), e)
	}
	clock := testkit.NewClock(at)
	log := &resultLog{}
	engine, err := envoy.NewEngine(envoy.EngineConfig{States: states, Observer: log, Now: clock.Now})
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
		{keyRevoked, at, authz.CodeKeyRevoked, false},
		{keyActive, at.AddDate(50, 0, 0), authz.CodeOK, false},
	}
	for _, tt := range tests {
		clock.Set(tt.now)
		r := engine.Authorize(context.Background(), authz.Request{APIKeys: []string{tt.key}})
		if r.Code != tt.want || r.Expired != tt.expired || !r.At.Equal(tt.now) {
			t.Errorf("Authorize(%s at %v) = %v, expired %v, at %v; want %v, expired %v", tt.key, tt.now, r.Code, r.Expired, r.At, tt.want, tt.expired)
		}
		if got := log.last.Load(); got == nil || got.Code != r.Code || got.KeyHash != authz.APIKey(tt.key).Hash() {
			t.Errorf("observer saw %+v; want the result with the key's hash", got)
		}
	}
}
