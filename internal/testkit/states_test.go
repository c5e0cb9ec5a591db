package testkit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/cache"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

var (
	_ cache.Loader = (*testkit.States)(nil)
	_ envoy.States = (*testkit.States)(nil)
)

func TestStates(t *testing.T) {
	s := testkit.NewStates()
	ctx := context.Background()
	h := authz.APIKey("sk_live_states_1").Hash()
	if e, err := s.Key(ctx, h); err != nil || e.Presence != authz.Absent {
		t.Errorf("Key of an unknown key = %+v, %v; want absent", e, err)
	}
	s.PutKey(h, authz.KeyEntry{Presence: authz.Present, Revision: 3})
	s.PutAccount("acct", authz.AccountEntry{Presence: authz.Present, Revision: 4})
	if e, err := s.LoadKey(ctx, h); err != nil || e.Revision != 3 {
		t.Errorf("LoadKey = %+v, %v; want revision 3", e, err)
	}
	if e, err := s.Account(ctx, "acct"); err != nil || e.Revision != 4 {
		t.Errorf("Account = %+v, %v; want revision 4", e, err)
	}
	down := errors.New("down")
	s.Fail(down)
	if _, err := s.LoadAccount(ctx, "acct"); !errors.Is(err, down) {
		t.Errorf("LoadAccount after Fail = %v; want %v", err, down)
	}
	s.Fail(nil)

	release := s.Hold()
	done := make(chan error, 1)
	go func() { _, err := s.Key(ctx, h); done <- err }()
	testkit.Eventually(t, time.Second, "lookup held", func() bool { return s.Lookups() == 5 })
	select {
	case err := <-done:
		t.Fatalf("held lookup returned %v", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("released lookup = %v", err)
	}
	held, cancel := context.WithCancel(ctx)
	release = s.Hold()
	defer release()
	cancel()
	if _, err := s.Key(held, h); !errors.Is(err, context.Canceled) {
		t.Errorf("held lookup with its context ended = %v; want context.Canceled", err)
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testkit.NewClock(start)
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("Now after Advance = %v; want %v", got, start.Add(time.Minute))
	}
	c.Set(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("Now after Set = %v; want %v", got, start)
	}
}
