package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// change is one state of a key or an account as the publisher wrote it. It
// may be what a reader sees from from (the write was sent) until the ack of
// the next definite change; ack is zero when the write's outcome is unknown
// (NATS failed under it).
type change[E any] struct {
	from, ack time.Time
	entry     E
	id        uint64 // to acknowledge it once the write returns
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
	h := t.keys[key]
	if h == nil {
		h = &history[authz.KeyEntry]{}
		t.keys[key] = h
	}
	if c.entry.Presence == authz.Present {
		t.account[key] = c.entry.Record.AccountID
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

func (t *truth) recordAccount(id string, c change[authz.AccountEntry]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.accounts[id]
	if h == nil {
		h = &history[authz.AccountEntry]{}
		t.accounts[id] = h
	}
	h.changes = append(h.changes, c)
	h.prune()
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

// driver publishes random changes through the real events.Publisher and
// records them in a truth. Keys are never re-created after deletion: each
// new key is a new plaintext.
type driver struct {
	pub      *events.Publisher
	truth    *truth
	rng      *rand.Rand
	accounts []string

	mu       sync.Mutex
	live     []string // created, not deleted
	all      []string // every key ever created
	next     int
	changes  int // definite changes
	unknown  int // writes whose outcome was unknown
	refused  int // changes the publisher refused (revoked is terminal, gone)
	lastErr  error
	prefix   string
	maxLive  int
	errLog   []string
}

func newDriver(pub *events.Publisher, tr *truth, seed uint64, prefix string, accounts int) *driver {
	d := &driver{pub: pub, truth: tr, rng: rand.New(rand.NewPCG(seed, seed)), prefix: prefix, maxLive: 40}
	for i := range accounts {
		d.accounts = append(d.accounts, fmt.Sprintf("%s_acct_%d", prefix, i))
	}
	return d
}

// keys returns every key created so far plus a few never created.
func (d *driver) keys() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := append([]string(nil), d.all...)
	for i := range 3 {
		out = append(out, fmt.Sprintf("sk_live_%s_never_%d", d.prefix, i))
	}
	return out
}

func (d *driver) counts() (changes, unknown, refused int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changes, d.unknown, d.refused
}

// step makes one random change. It returns an error only when NATS failed.
func (d *driver) step(ctx context.Context) error {
	d.mu.Lock()
	n := len(d.live)
	d.mu.Unlock()
	switch r := d.rng.IntN(10); {
	case n < 5 || (r == 0 && n < d.maxLive):
		return d.create(ctx)
	case r <= 2:
		return d.balance(ctx, d.accounts[d.rng.IntN(len(d.accounts))])
	default:
		d.mu.Lock()
		key := d.live[d.rng.IntN(len(d.live))]
		d.mu.Unlock()
		return d.keyOp(ctx, key)
	}
}

func (d *driver) create(ctx context.Context) error {
	d.mu.Lock()
	key := fmt.Sprintf("sk_live_%s_%d", d.prefix, d.next)
	d.next++
	d.mu.Unlock()
	state := authz.StateActive
	if d.rng.IntN(4) == 0 {
		state = authz.StateSuspended
	}
	rec := authz.KeyRecord{KeyID: fmt.Sprintf("key_%d", d.next), AccountID: d.accounts[d.rng.IntN(len(d.accounts))], State: state}
	err := d.writeKey(ctx, key, &rec, func(ctx context.Context) (uint64, error) {
		return d.pub.PutKey(ctx, authz.APIKey(key).Hash(), rec)
	})
	d.mu.Lock()
	d.all = append(d.all, key)
	if len(d.all) > maxChecked {
		d.all = d.all[len(d.all)-maxChecked:]
	}
	d.live = append(d.live, key)
	d.mu.Unlock()
	return err
}

// maxChecked bounds the keys checked: the most recent ones created.
const maxChecked = 1000

// randomKey returns a key to check: mostly created ones, sometimes one
// never created.
func (d *driver) randomKey(rng *rand.Rand) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.all) == 0 || rng.IntN(20) == 0 {
		return fmt.Sprintf("sk_live_%s_never_%d", d.prefix, rng.IntN(3))
	}
	return d.all[rng.IntN(len(d.all))]
}

func (d *driver) keyOp(ctx context.Context, key string) error {
	h := authz.APIKey(key).Hash()
	cur, err := d.pub.GetKey(ctx, h)
	if errors.Is(err, events.ErrNotFound) {
		d.forget(key) // its creation never landed
		return nil
	}
	if err != nil {
		return d.fail(err)
	}
	next := cur.Record
	var op func(context.Context) (uint64, error)
	r := d.rng.IntN(10)
	if cur.Record.State == authz.StateRevoked && r < 5 {
		r = 9 // revoked keys are mostly deleted, else refused a change
	}
	switch {
	case r < 3:
		next.State, op = authz.StateSuspended, func(ctx context.Context) (uint64, error) { return d.pub.Suspend(ctx, h) }
	case r < 7:
		next.State, op = authz.StateActive, func(ctx context.Context) (uint64, error) { return d.pub.Reactivate(ctx, h) }
	case r < 9:
		next.State, op = authz.StateRevoked, func(ctx context.Context) (uint64, error) { return d.pub.Revoke(ctx, h) }
	default:
		d.forget(key)
		return d.writeKey(ctx, key, nil, func(ctx context.Context) (uint64, error) { return d.pub.DeleteKey(ctx, h) })
	}
	if cur.Record.State == authz.StateRevoked && next.State != authz.StateRevoked {
		// The publisher must refuse; nothing changes.
		if _, err := op(ctx); !errors.Is(err, authz.ErrRevokedTerminal) {
			return d.fail(fmt.Errorf("revoked key changed to %s: %v", next.State, err))
		}
		d.mu.Lock()
		d.refused++
		d.mu.Unlock()
		return nil
	}
	if cur.Record.State == next.State {
		return nil // a no-op write
	}
	return d.writeKey(ctx, key, &next, op)
}

func (d *driver) forget(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range d.live {
		if k == key {
			d.live = append(d.live[:i], d.live[i+1:]...)
			return
		}
	}
}

// writeKey runs op and records its outcome; rec nil is a deletion.
func (d *driver) writeKey(ctx context.Context, key string, rec *authz.KeyRecord, op func(context.Context) (uint64, error)) error {
	e := absentKey
	if rec != nil {
		e = authz.KeyEntry{Presence: authz.Present, Record: *rec}
	}
	// Recorded before the write, since a reader may see it before the ack.
	id := changeIDs.Add(1)
	d.truth.recordKey(key, change[authz.KeyEntry]{from: time.Now(), entry: e, id: id})
	_, err := op(ctx)
	if err == nil {
		d.truth.ackKey(key, id)
		d.count(true)
		return nil
	}
	d.mu.Lock()
	d.errLog = append(d.errLog, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), key, err))
	d.mu.Unlock()
	// The write may or may not have landed: both stay possible until the
	// record is read back.
	d.count(false)
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // even when ctx ended
	defer cancel()
	got, rerr := d.readKey(rctx, key)
	if rerr != nil {
		return d.fail(fmt.Errorf("%w; then read back: %v", err, rerr))
	}
	d.truth.recordKey(key, change[authz.KeyEntry]{from: time.Now(), ack: time.Now(), entry: got})
	return d.fail(err)
}

// readKey reads a key back, retrying while NATS is away.
func (d *driver) readKey(ctx context.Context, key string) (authz.KeyEntry, error) {
	for {
		e, err := d.pub.GetKey(ctx, authz.APIKey(key).Hash())
		switch {
		case errors.Is(err, events.ErrNotFound):
			return absentKey, nil
		case err == nil:
			return authz.KeyEntry{Presence: authz.Present, Record: e.Record}, nil
		case ctx.Err() != nil:
			return authz.KeyEntry{}, err
		}
		time.Sleep(20 * time.Millisecond) // NATS is down: retry, not waiting on an effect
	}
}

func (d *driver) balance(ctx context.Context, id string) error {
	amount := []string{"12.50", "0", "-3.25", "0.01", "100"}[d.rng.IntN(5)]
	b, perr := authz.ParseBalance(amount)
	if perr != nil {
		return perr
	}
	e := authz.AccountEntry{Presence: authz.Present, Account: authz.Account{Balance: b}}
	cid := changeIDs.Add(1)
	d.truth.recordAccount(id, change[authz.AccountEntry]{from: time.Now(), entry: e, id: cid})
	_, err := d.pub.SetBalance(ctx, id, b)
	if err == nil {
		d.truth.ackAccount(id, cid)
		d.count(true)
		return nil
	}
	d.count(false)
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // even when ctx ended
	defer cancel()
	for rctx.Err() == nil {
		got, rerr := d.pub.GetAccount(rctx, id)
		if rerr == nil || errors.Is(rerr, events.ErrNotFound) {
			if rerr != nil {
				got = absentAccount
			}
			got.Revision = 0
			d.truth.recordAccount(id, change[authz.AccountEntry]{from: time.Now(), ack: time.Now(), entry: got})
			break
		}
		time.Sleep(20 * time.Millisecond) // NATS is down: retry
	}
	return d.fail(err)
}

func (d *driver) count(definite bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if definite {
		d.changes++
	} else {
		d.unknown++
	}
}

func (d *driver) fail(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastErr = err
	return err
}
