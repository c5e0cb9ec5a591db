package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// driver publishes random changes through the real events.Publisher and
// records them in a truth. New keys are drawn from a fixed pool of names, so
// that a deleted key is created again later and a long soak keeps a bounded
// bucket (with one value or delete marker per name) and a bounded truth.
type driver struct {
	pub      *events.Publisher
	truth    *truth
	rng      *rand.Rand
	accounts []string

	mu      sync.Mutex
	live    []string // created, not deleted
	all     []string // every key ever created
	next    int
	changes int // definite changes
	unknown int // writes whose outcome was unknown
	refused int // changes the publisher refused (revoked is terminal, gone)
	lastErr error
	prefix  string
	maxLive int
	errLog  []string
}

func newDriver(pub *events.Publisher, tr *truth, seed uint64, prefix string, accounts int) *driver {
	d := &driver{pub: pub, truth: tr, rng: rand.New(rand.NewPCG(seed, seed)), prefix: prefix, maxLive: 40}
	tr.readKey, tr.readAccount = d.readKey, d.readAccount
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

// keyPool is how many key names the driver cycles through.
const keyPool = 400

func (d *driver) create(ctx context.Context) error {
	d.mu.Lock()
	key := d.freeName()
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
	if !slices.Contains(d.all, key) {
		d.all = append(d.all, key)
	}
	if len(d.all) > maxChecked {
		d.all = d.all[len(d.all)-maxChecked:]
	}
	d.live = append(d.live, key)
	d.mu.Unlock()
	return err
}

// freeName returns the next name of the pool that is not live. Callers hold
// d.mu; the pool is ten times the live keys, so one is always free.
func (d *driver) freeName() string {
	for {
		key := fmt.Sprintf("sk_live_%s_%d", d.prefix, d.next%keyPool)
		d.next++
		if !slices.Contains(d.live, key) {
			return key
		}
	}
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
	// The write may or may not have landed: both stay possible. What is
	// read back is possible too, but proves nothing: under faults a read
	// can come from a stream leader that is behind (the write landed, the
	// read shows the state before it), so only the next acknowledged
	// change of the key ends the doubt.
	d.count(false)
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // even when ctx ended
	defer cancel()
	got, rerr := d.readKey(rctx, key)
	if rerr != nil {
		return d.fail(fmt.Errorf("%w; then read back: %v", err, rerr))
	}
	d.truth.recordKey(key, change[authz.KeyEntry]{from: time.Now(), entry: got, id: changeIDs.Add(1), doubt: true})
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
	if got, rerr := d.readAccount(rctx, id); rerr == nil {
		// Possible, not proven: see writeKey.
		d.truth.recordAccount(id, change[authz.AccountEntry]{from: time.Now(), entry: got, id: changeIDs.Add(1), doubt: true})
	}
	return d.fail(err)
}

// readAccount reads an account back, retrying while NATS is away.
func (d *driver) readAccount(ctx context.Context, id string) (authz.AccountEntry, error) {
	for {
		got, err := d.pub.GetAccount(ctx, id)
		switch {
		case errors.Is(err, events.ErrNotFound):
			return absentAccount, nil
		case err == nil:
			got.Revision = 0
			return got, nil
		case ctx.Err() != nil:
			return authz.AccountEntry{}, err
		}
		time.Sleep(20 * time.Millisecond) // NATS is down: retry, not waiting on an effect
	}
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

// wipe forgets every live key: the bucket was recreated empty.
func (d *driver) wipe() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.live = nil
}

// seed writes n active keys with a funded account and returns them.
func seed(tb testing.TB, d *driver, prefix string, n int) []string {
	tb.Helper()
	ctx := context.Background()
	if _, err := d.pub.SetBalance(ctx, prefix+"_acct", testkit.Balance(tb, "10")); err != nil {
		tb.Fatal(err)
	}
	d.truth.recordAccount(prefix+"_acct", change[authz.AccountEntry]{from: time.Now(), ack: time.Now(),
		entry: authz.AccountEntry{Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(tb, "10")}}})
	var keys []string
	for i := range n {
		key := "sk_live_" + prefix + "_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		rec := authz.KeyRecord{KeyID: "key_" + prefix, AccountID: prefix + "_acct", State: authz.StateActive}
		if _, err := d.pub.PutKey(ctx, authz.APIKey(key).Hash(), rec); err != nil {
			tb.Fatal(err)
		}
		d.truth.recordKey(key, change[authz.KeyEntry]{from: time.Now(), ack: time.Now(), entry: authz.KeyEntry{Presence: authz.Present, Record: rec}})
		keys = append(keys, key)
	}
	return keys
}

// putActive writes an active key on an account with credit.
func putActive(tb testing.TB, pub *events.Publisher, key, keyID, account string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := authz.ParseBalance("10.00")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pub.SetBalance(ctx, account, b); err != nil {
		tb.Fatalf("set balance: %v", err)
	}
	rec := authz.KeyRecord{KeyID: keyID, AccountID: account, State: authz.StateActive}
	if _, err := pub.PutKey(ctx, authz.APIKey(key).Hash(), rec); err != nil {
		tb.Fatalf("put key: %v", err)
	}
}

// revokeRetrying revokes key, retrying while the cluster elects a leader.
func revokeRetrying(tb testing.TB, pub *events.Publisher, key string) {
	tb.Helper()
	var err error
	ok := testkit.Poll(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = pub.Revoke(ctx, authz.APIKey(key).Hash())
		return err == nil || errors.Is(err, authz.ErrRevokedTerminal)
	})
	if !ok {
		tb.Fatalf("revoke: %v", err)
	}
}
