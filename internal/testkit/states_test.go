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
	go func() {
		e, err := s.Key(ctx, h)
		if e.Revision != 3 {
			t.Errorf("held lookup = %+v; want revision 3, what it read when asked", e)
		}
		done <- err
	}()
	testkit.Eventually(t, time.Second, "lookup held", func() bool { return s.Lookups() == 5 })
	select {
	case err := <-done:
		t.Fatalf("held lookup returned %v", err)
	default:
	}
	s.PutKey(h, authz.KeyEntry{Presence: authz.Present, Revision: 9})
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

func TestStatesFailOne(t *testing.T) {
	s := testkit.NewStates()
	ctx := context.Background()
	bad, good := authz.APIKey("sk_live_states_bad").Hash(), authz.APIKey("sk_live_states_good").Hash()
	s.PutKey(good, authz.KeyEntry{Presence: authz.Present, Revision: 1})
	keyDown, accountDown, allDown := errors.New("key down"), errors.New("account down"), errors.New("all down")
	s.FailKey(bad, keyDown)
	s.FailAccount("down", accountDown)
	if _, err := s.Key(ctx, bad); !errors.Is(err, keyDown) {
		t.Errorf("Key of the failing key = %v; want %v", err, keyDown)
	}
	if _, err := s.Account(ctx, "down"); !errors.Is(err, accountDown) {
		t.Errorf("Account of the failing account = %v; want %v", err, accountDown)
	}
	if e, err := s.Key(ctx, good); err != nil || e.Revision != 1 {
		t.Errorf("Key of another key = %+v, %v; want revision 1", e, err)
	}
	if e, err := s.Account(ctx, "up"); err != nil || e.Presence != authz.Absent {
		t.Errorf("Account of another account = %+v, %v; want absent", e, err)
	}
	s.Fail(allDown)
	if _, err := s.Key(ctx, bad); !errors.Is(err, allDown) {
		t.Errorf("Key after Fail = %v; want %v first", err, allDown)
	}
	s.Fail(nil)
	s.FailKey(bad, nil)
	if e, err := s.Key(ctx, bad); err != nil || e.Presence != authz.Absent {
		t.Errorf("Key of a healed key = %+v, %v; want absent", e, err)
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
