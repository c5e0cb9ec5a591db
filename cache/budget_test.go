package cache

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// TestLoadBudget sprays unknown keys at a store with a budget of 10 loads a
// second: only the burst is loaded, the rest fail closed and are counted,
// and a cached key keeps being answered.
func TestLoadBudget(t *testing.T) {
	l := testkit.NewStates()
	s, err := New(Config{Loader: l, MaxLoadsPerSecond: 10, LoadBurst: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx := context.Background()
	const spray = 100
	var throttled int
	for i := range spray {
		h := authz.APIKey(fmt.Sprintf("sk_live_spray_%d", i)).Hash()
		e, err := s.Key(ctx, h)
		switch {
		case errors.Is(err, ErrLoadBudget):
			throttled++
			if e.Presence != authz.Unreadable {
				t.Fatalf("Key(throttled) presence = %v; want unreadable", e.Presence)
			}
		case err != nil:
			t.Fatalf("Key(%d) error = %v", i, err)
		}
	}
	if got := l.Lookups(); got > 7 { // the burst and what the rate refilled meanwhile
		t.Errorf("loads = %d; want at most 7 of %d misses", got, spray)
	}
	if st := s.Stats(); st.Keys.Throttled != uint64(throttled) || throttled < spray-7 {
		t.Errorf("Throttled = %d, seen %d; want at least %d", st.Keys.Throttled, throttled, spray-7)
	}
}

func TestLoadBudgetRejectsNegative(t *testing.T) {
	if _, err := New(Config{Loader: testkit.NewStates(), MaxLoadsPerSecond: -1}); err == nil {
		t.Fatal("New(MaxLoadsPerSecond: -1) = nil error; want an error")
	}
}
