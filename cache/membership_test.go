package cache

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/internal/testkit"
)

// setMembership is a Membership over a fixed set of hashes.
type setMembership struct {
	mu   sync.Mutex
	keys map[authz.KeyHash]bool
}

func (m *setMembership) MayExist(h authz.KeyHash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[h]
}

// TestMembershipAnswersUnknownKeys sprays keys the membership rules out at a
// store with a lookup budget of 1: none is loaded or stored, none spends the
// budget, so a real key still loads; a key the membership admits is loaded
// as usual.
func TestMembershipAnswersUnknownKeys(t *testing.T) {
	l := testkit.NewStates()
	real := hashOf("sk_live_real_member")
	l.PutKey(real, present(3, authz.StateActive))
	m := &setMembership{keys: map[authz.KeyHash]bool{real: true}}
	s := newTestStore(t, Config{Loader: l, Membership: m, MaxLoadsPerSecond: 1, LoadBurst: 1})
	ctx := context.Background()
	for i := range 1000 {
		e, err := s.Key(ctx, hashOf(fmt.Sprintf("sk_live_spray_member_%d", i)))
		if err != nil || e.Presence != authz.Absent {
			t.Fatalf("Key(sprayed %d) = %+v, %v; want absent, nil", i, e, err)
		}
	}
	if got := l.Lookups(); got != 0 {
		t.Errorf("loads after the spray = %d; want 0", got)
	}
	e, err := s.Key(ctx, real)
	if err != nil || e.Presence != authz.Present || e.Revision != 3 {
		t.Errorf("Key(real) after the spray = %+v, %v; want present at 3", e, err)
	}
	st := s.Stats().Keys
	if st.Unknown != 1000 || st.Throttled != 0 || st.Misses != 1 {
		t.Errorf("Unknown %d, Throttled %d, Misses %d; want 1000, 0, 1", st.Unknown, st.Throttled, st.Misses)
	}
}
