package events

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSnapshotAdd reads the messages of a direct get with multi_last as the
// server writes them: records, a delete marker, the end of the batch with
// and without the position, no results, and refusals.
func TestSnapshotAdd(t *testing.T) {
	msg := func(data string, hdr ...string) *nats.Msg {
		m := &nats.Msg{Header: nats.Header{}, Data: []byte(data)}
		for i := 0; i+1 < len(hdr); i += 2 {
			m.Header.Set(hdr[i], hdr[i+1])
		}
		return m
	}
	record := func(subject, seq string, extra ...string) *nats.Msg {
		return msg(`{"balance":"1"}`, append([]string{"Nats-Subject", subject, "Nats-Sequence", seq, "Nats-Time-Stamp", "2026-01-01T00:00:00.5Z"}, extra...)...)
	}
	tests := []struct {
		name     string
		msg      *nats.Msg
		wantDone bool
		wantErr  error
		wantUpTo uint64
	}{
		{"put", record("$KV.b.account.a1", "7"), false, nil, 0},
		{"delete marker", record("$KV.b.key.k", "8", "KV-Operation", "DEL"), false, nil, 0},
		{"end of batch", msg("", "Status", "204", "Nats-UpTo-Sequence", "9"), true, nil, 9},
		{"end of batch without position", msg("", "Status", "204"), true, errNoPosition, 0},
		{"no results", msg("", "Status", "404"), true, errNoPosition, 0},
		{"multi_last not understood", msg("", "Status", "408"), true, errSnapshotUnsupported, 0},
		{"no responders", msg("", "Status", "503"), true, nats.ErrNoResponders, 0},
	}
	for _, tt := range tests {
		s := snapshot{entries: map[string]rawEntry{}}
		done, err := s.add(tt.msg, "$KV.b.")
		if done != tt.wantDone || !errors.Is(err, tt.wantErr) || s.upTo != tt.wantUpTo {
			t.Errorf("add(%s) = %v, %v, upTo %d; want %v, %v, upTo %d", tt.name, done, err, s.upTo, tt.wantDone, tt.wantErr, tt.wantUpTo)
		}
	}
	s := snapshot{entries: map[string]rawEntry{}}
	created := record("$KV.b.key.new", "9", "Nats-Expected-Last-Subject-Sequence", "0")
	updated := record("$KV.b.key.upd", "10", "Nats-Expected-Last-Subject-Sequence", "4")
	for _, m := range []*nats.Msg{record("$KV.b.account.a1", "7"), record("$KV.b.key.k", "8", "KV-Operation", "DEL"), created, updated} {
		if _, err := s.add(m, "$KV.b."); err != nil {
			t.Fatal(err)
		}
	}
	if e := s.entries["account.a1"]; e.revision != 7 || e.op != jetstream.KeyValuePut || string(e.value) != `{"balance":"1"}` || !e.created.Equal(time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC)) {
		t.Errorf("put read as %+v", e)
	}
	if e := s.entries["key.k"]; e.revision != 8 || e.op != jetstream.KeyValueDelete || e.firstOfKey {
		t.Errorf("delete marker read as %+v", e)
	}
	if !s.entries["key.new"].firstOfKey || s.entries["key.upd"].firstOfKey || s.entries["account.a1"].firstOfKey {
		t.Error("only a message written with an expected last subject sequence of 0 is the first of its key")
	}
	if _, err := s.add(record("$KV.other.key.k", "9"), "$KV.b."); err == nil {
		t.Error("a message of another bucket was taken")
	}
}
