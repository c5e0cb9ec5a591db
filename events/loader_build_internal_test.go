package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// stubBuilder is a watcher building its index, answering snapshot reads
// from a script.
type stubBuilder struct {
	start   uint64
	answers []stubAnswer
	reads   int
	floor   uint64
}

type stubAnswer struct {
	snap snapshot
	err  error
}

func (b *stubBuilder) readWhileBuilding(context.Context, ...string) (snapshot, uint64, bool, error) {
	a := b.answers[min(b.reads, len(b.answers)-1)]
	b.reads++
	return a.snap, b.start, true, a.err
}

func (b *stubBuilder) revokedWhileBuilding(context.Context, authz.KeyHash, snapshot) (uint64, bool, error) {
	return 0, false, nil
}

// stubKV is a bucket that only has a name.
type stubKV struct{ jetstream.KeyValue }

func (stubKV) Bucket() string { return "b" }

func (b *stubBuilder) Revoked(authz.KeyHash, uint64) (uint64, bool, bool) { return 0, false, false }
func (b *stubBuilder) Floor(string) uint64                                { return b.floor }

// TestSnapshotReadsBehindAreReadAgain: while the index is being built, a
// Loader takes a read only from a server that had applied the build's start
// and the record's floor; answers from servers behind (no position, an
// older position, an older record) are read again, and fail closed when
// none catches up in time.
func TestSnapshotReadsBehindAreReadAgain(t *testing.T) {
	acct := func(rev, upTo uint64) snapshot {
		return snapshot{upTo: upTo, entries: map[string]rawEntry{AccountKVKey("a1"): {revision: rev, op: jetstream.KeyValuePut, value: []byte(`{"balance":"3"}`)}}}
	}
	b := &stubBuilder{start: 50, floor: 40, answers: []stubAnswer{
		{err: errNoPosition}, // the server holds none of the keys asked
		{snap: acct(30, 45)}, // a server behind the build's start
		{snap: acct(30, 60)}, // a record older than the watch applied
		{snap: acct(40, 60), err: nil},
	}}
	l := NewLoader(stubKV{})
	l.UseIndex(b)
	e, err := l.LoadAccount(context.Background(), "a1")
	if err != nil || e.Presence != authz.Present || e.Revision != 40 {
		t.Errorf("LoadAccount = %+v, %v; want the current read, revision 40", e, err)
	}
	if l.BehindReads() != 3 || b.reads != 4 {
		t.Errorf("%d reads behind of %d; want 3 of 4", l.BehindReads(), b.reads)
	}

	b = &stubBuilder{start: 50, answers: []stubAnswer{{snap: acct(30, 45)}}}
	l = NewLoader(stubKV{})
	l.UseIndex(b)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if e, err := l.LoadAccount(ctx, "a1"); !errors.Is(err, ErrBehindWatch) || e.Presence != authz.Unreadable {
		t.Errorf("LoadAccount from a server that stays behind = %+v, %v; want unreadable, ErrBehindWatch", e, err)
	}
}
