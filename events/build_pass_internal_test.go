package events

import (
	"log/slog"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPassKeepsTheWatchFloors: the history pass applies messages older than
// the changes the live watch has applied since the start (a message the pass
// was sent before a live change superseded it): the floors the watch raised
// stay, and a record only the pass has read gets the pass's revision.
func TestPassKeepsTheWatchFloors(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	w := &Watcher{index: newKeyIndex(), terminal: newTerminal(), log: discard}
	w.quiet = &rules{t: w.terminal, keys: discardKeys{}, writes: noWrites{}, log: discard}
	b := &build{upTo: 10, byHash: make(map[authz.KeyHash][]jetstream.KeyValueEntry),
		firstKey: make(map[authz.KeyHash]jetstream.KeyValueEntry), baseRev: make(map[authz.KeyHash]uint64),
		progress: make(chan struct{})}
	w.build = b

	changed, readOnly := authz.APIKey("sk_live_pass_changed").Hash(), authz.APIKey("sk_live_pass_read").Hash()
	live := map[string]uint64{KeyKVKey(changed): 12, AccountKVKey("a1"): 13}
	for kvKey, rev := range live {
		fp, isKey := w.index.fingerprintOf(ParseKVKey(kvKey), kvKey)
		w.index.record(fp, isKey, rev) // as Watcher.apply does for a live change
	}
	history := []*seqEntry{
		{key: KeyKVKey(changed), value: []byte(`{"key_id":"k1","account_id":"a1","state":"active"}`), revision: 3, op: jetstream.KeyValuePut},
		{key: AccountKVKey("a1"), value: []byte(`{"balance":"5"}`), revision: 4, op: jetstream.KeyValuePut},
		{key: KeyKVKey(readOnly), value: []byte(`{"key_id":"k2","account_id":"a1","state":"active"}`), revision: 5, op: jetstream.KeyValuePut},
	}
	for _, e := range history {
		if !w.applyBase(b, e, nil) {
			t.Fatalf("applyBase(%s) = false with the build in progress", e.key)
		}
	}
	for kvKey, want := range live {
		if got := w.Floor(kvKey); got != want {
			t.Errorf("Floor(%s) = %d after the pass read revision below; want the watch's %d", kvKey, got, want)
		}
	}
	if got := w.Floor(KeyKVKey(readOnly)); got != 5 {
		t.Errorf("Floor of a record only the pass read = %d; want 5", got)
	}
}
