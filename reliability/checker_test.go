package reliability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
)

// change is one state of a key or an account as the publisher wrote it. It
// may be what a reader sees from from (the write was sent) until the ack of
// the next definite change; ack is zero when the write's outcome is unknown
// (NATS failed under it).
type change[E any] struct {
	from, ack time.Time
	entry     E
	id        uint64 // to acknowledge it once the write returns
	// doubt marks a state read back after a write of unknown outcome:
	// possible, never acknowledged, to be confirmed (truth.confirm).
	doubt bool
}

// history is every state of one key or account, oldest first. Before the
// first change a record is absent.
type history[E any] struct {
	changes []change[E]
	pruned  bool // older changes, none possible any more, were dropped
}

// possible returns the states a reader may see at some time in [s, e],
// or in the bound before s: every change sent before e and not yet replaced
// by a definite later change at s-bound.
func (h *history[E]) possible(absent E, s, e time.Time, bound time.Duration) []E {
	cutoff := s.Add(-bound)
	var out []E
	// The initial absence lasts until the first definite ack.
	if firstAck := h.nextAck(-1); !h.pruned && (firstAck.IsZero() || !firstAck.Before(cutoff)) {
		out = append(out, absent)
	}
	for i, c := range h.changes {
		if c.from.After(e) {
			break
		}
		if end := h.nextAck(i); end.IsZero() || !end.Before(cutoff) {
			out = append(out, c.entry)
		}
	}
	return out
}

// nextAck returns the ack of the first definite change after i, or zero.
func (h *history[E]) nextAck(i int) time.Time {
	for _, c := range h.changes[i+1:] {
		if !c.ack.IsZero() {
			return c.ack
		}
	}
	return time.Time{}
}

func (h *history[E]) last(absent E) E {
	if len(h.changes) == 0 {
		return absent
	}
	return h.changes[len(h.changes)-1].entry
}

// truth knows every change published, and when.
type truth struct {
	mu       sync.Mutex
	keys     map[string]*history[authz.KeyEntry] // by plaintext key
	accounts map[string]*history[authz.AccountEntry]
	account  map[string]string // key -> its account
	// readKey and readAccount, when set, read a record back from the bucket
	// (confirm).
	readKey     func(context.Context, string) (authz.KeyEntry, error)
	readAccount func(context.Context, string) (authz.AccountEntry, error)
}

func newTruth() *truth {
	return &truth{keys: map[string]*history[authz.KeyEntry]{}, accounts: map[string]*history[authz.AccountEntry]{}, account: map[string]string{}}
}

var (
	absentKey     = authz.KeyEntry{Presence: authz.Absent}
	absentAccount = authz.AccountEntry{Presence: authz.Absent}
)

func (t *truth) recordKey(key string, c change[authz.KeyEntry]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.entry.Presence == authz.Present {
		t.account[key] = c.entry.Record.AccountID
	}
	record(t.keys, key, c)
}

func (t *truth) recordAccount(id string, c change[authz.AccountEntry]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	record(t.accounts, id, c)
}

// record appends c to the history of id in m, started when missing.
func record[E any](m map[string]*history[E], id string, c change[E]) {
	h := m[id]
	if h == nil {
		h = &history[E]{}
		m[id] = h
	}
	h.changes = append(h.changes, c)
	h.prune()
}

// prune drops changes replaced by a definite change more than a minute ago,
// so that a long soak keeps a bounded history.
func (h *history[E]) prune() {
	if len(h.changes) < 16 {
		return
	}
	cutoff := time.Now().Add(-time.Minute)
	drop := 0
	for i := range h.changes[:len(h.changes)-1] {
		if end := h.nextAck(i); end.IsZero() || !end.Before(cutoff) {
			break
		}
		drop = i + 1
	}
	if drop > 0 {
		h.changes, h.pruned = h.changes[drop:], true
	}
}

// ack marks the change id of h acknowledged at now.
func ack[E any](h *history[E], id uint64, at time.Time) {
	for i := len(h.changes) - 1; i >= 0; i-- {
		if h.changes[i].id == id {
			h.changes[i].ack = at
			return
		}
	}
}

// ackKey and ackAccount acknowledge a change recorded before its write.
func (t *truth) ackKey(key string, id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ack(t.keys[key], id, time.Now())
}

func (t *truth) ackAccount(acct string, id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ack(t.accounts[acct], id, time.Now())
}

var changeIDs atomic.Uint64

// acceptable returns the codes a Check of key sent at s and answered at e may
// give: Decide over every key and account state possible then.
func (t *truth) acceptable(key string, s, e time.Time, bound time.Duration) map[authz.Code]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cred := authz.Credential{Code: authz.CodeOK, Key: authz.APIKey(key)}
	keys := []authz.KeyEntry{absentKey}
	if h := t.keys[key]; h != nil {
		keys = h.possible(absentKey, s, e, bound)
	}
	accts := []authz.AccountEntry{absentAccount}
	if h := t.accounts[t.account[key]]; h != nil {
		accts = h.possible(absentAccount, s, e, bound)
	}
	out := map[authz.Code]bool{}
	for _, k := range keys {
		for _, a := range accts {
			out[authz.Decide(cred, k, a)] = true
		}
	}
	return out
}

// confirm reads back every key and account whose last change is a doubt (a
// state read back after a write whose outcome is unknown), and records what
// it reads as definite, unless a newer change was recorded meanwhile. Call it
// once the cluster has healed: then a read through the stream leader is
// current.
func (t *truth) confirm(tb testing.TB) {
	tb.Helper()
	if t.readKey == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	confirmDoubts(tb, ctx, &t.mu, t.keys, t.readKey)
	confirmDoubts(tb, ctx, &t.mu, t.accounts, t.readAccount)
}

// confirmDoubts reads back every record of m whose last change is a doubt,
// and records what it reads as definite, unless a newer change was recorded
// meanwhile. The reads run without mu, the truth's lock.
func confirmDoubts[E any](tb testing.TB, ctx context.Context, mu *sync.Mutex, m map[string]*history[E], read func(context.Context, string) (E, error)) {
	tb.Helper()
	mu.Lock()
	doubts := map[string]uint64{}
	for name, h := range m {
		if n := len(h.changes); n > 0 && h.changes[n-1].doubt {
			doubts[name] = h.changes[n-1].id
		}
	}
	mu.Unlock()
	for name, id := range doubts {
		e, err := read(ctx, name)
		if err != nil {
			tb.Fatalf("read back %s: %v", name, err)
		}
		mu.Lock()
		if h := m[name]; h.changes[len(h.changes)-1].id == id {
			now := time.Now()
			h.changes = append(h.changes, change[E]{from: now, ack: now, entry: e})
		}
		mu.Unlock()
	}
}

// describe lists the recorded changes of key and its account, for a failure
// message: each state with when it was sent and acknowledged.
func (t *truth) describe(key string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	show := func(what string, from, ack time.Time) {
		at := "unacknowledged"
		if !ack.IsZero() {
			at = ack.Format("15:04:05.000")
		}
		fmt.Fprintf(&b, " [%s sent %s acked %s]", what, from.Format("15:04:05.000"), at)
	}
	if h := t.keys[key]; h != nil {
		for _, c := range h.changes {
			show(fmt.Sprintf("key %s %s", c.entry.Presence, c.entry.Record.State), c.from, c.ack)
		}
	}
	if h := t.accounts[t.account[key]]; h != nil {
		for _, c := range h.changes {
			show(fmt.Sprintf("account %s %s", c.entry.Presence, c.entry.Account.Balance), c.from, c.ack)
		}
	}
	return b.String()
}

// final returns the code every instance must give for key once all changes
// have reached it.
func (t *truth) final(key string) authz.Code {
	t.mu.Lock()
	defer t.mu.Unlock()
	cred := authz.Credential{Code: authz.CodeOK, Key: authz.APIKey(key)}
	k, a := absentKey, absentAccount
	if h := t.keys[key]; h != nil {
		k = h.last(absentKey)
	}
	if h := t.accounts[t.account[key]]; h != nil {
		a = h.last(absentAccount)
	}
	return authz.Decide(cred, k, a)
}

// wipe records that every key and account may be absent from now on: the
// bucket is being deleted. The deletion can land before the call that made it
// returns (a timeout under faults, then a retry that finds no bucket), so the
// absence is possible from the start; the function returned acknowledges it
// once the bucket is known to be gone.
func (t *truth) wipe() (done func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, from := changeIDs.Add(1), time.Now()
	appendAll(t.keys, change[authz.KeyEntry]{from: from, entry: absentKey, id: id})
	appendAll(t.accounts, change[authz.AccountEntry]{from: from, entry: absentAccount, id: id})
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		at := time.Now()
		ackAll(t.keys, id, at)
		ackAll(t.accounts, id, at)
	}
}

// appendAll records c as the next change of every history of m.
func appendAll[E any](m map[string]*history[E], c change[E]) {
	for _, h := range m {
		h.changes = append(h.changes, c)
	}
}

// ackAll acknowledges the change id of every history of m at at.
func ackAll[E any](m map[string]*history[E], id uint64, at time.Time) {
	for _, h := range m {
		ack(h, id, at)
	}
}
