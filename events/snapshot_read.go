package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A snapshot read returns the last message of a few KV keys as one server
// held them at one instant, with the stream's last sequence on that server
// then, so that an answer from a server behind a given position (a stream
// leader elected a moment ago and still applying, a lagging follower) can be
// told from a current one. It is a direct get with multi_last (nats-server
// 2.11 and later): any replica may answer, under the stream's read lock, and
// the end-of-batch message carries Nats-UpTo-Sequence, the sequence the
// server read up to. A server answers "no results", without that sequence,
// when none of the keys has a message; so the watcher adds a sentinel to
// every read, a KV key known to have one.

// snapshot is the answer to a snapshot read.
type snapshot struct {
	entries map[string]rawEntry // last message by KV key; missing when the key has none
	upTo    uint64              // the stream's last sequence on the server that answered
}

// errNoPosition reports an answer that does not show the server's position:
// no results (the server holds none of the keys, not even the sentinel: it
// is behind) or no sequence.
var errNoPosition = errors.New("snapshot read: the answer shows no stream position")

// errSnapshotUnsupported reports a server or bucket that cannot answer
// snapshot reads: direct gets are off, or multi_last is not understood.
var errSnapshotUnsupported = errors.New("snapshot read: not supported by the bucket or the server")

// snapshotAttempt bounds one attempt; a later one asks again, since any
// replica may answer.
const snapshotAttempt = 250 * time.Millisecond

// readSnapshot reads the last messages of kvKeys with one direct get.
func readSnapshot(ctx context.Context, nc *nats.Conn, bucket string, kvKeys []string) (snapshot, error) {
	prefix := "$KV." + bucket + "."
	subjects := make([]string, len(kvKeys))
	for i, k := range kvKeys {
		subjects[i] = prefix + k
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjects})
	if err != nil {
		return snapshot{}, err
	}
	// The answer is at most one message a subject and the end of the batch:
	// a queue of that length holds all of it, where a synchronous
	// subscription would allocate the connection's default of 65,536.
	inbox := nc.NewInbox()
	answer := make(chan *nats.Msg, len(subjects)+1)
	sub, err := nc.ChanSubscribe(inbox, answer)
	if err != nil {
		return snapshot{}, err
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET.KV_"+bucket, inbox, req); err != nil {
		return snapshot{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotAttempt)
	defer cancel()
	snap := snapshot{entries: make(map[string]rawEntry, len(kvKeys))}
	for {
		select {
		case msg := <-answer:
			if done, err := snap.add(msg, prefix); done || err != nil {
				return snap, err
			}
		case <-ctx.Done():
			return snapshot{}, fmt.Errorf("snapshot read of bucket %s: %w", bucket, ctx.Err())
		}
	}
}

// add takes one message of the answer; done is true at its end.
func (s *snapshot) add(msg *nats.Msg, prefix string) (done bool, err error) {
	switch status := msg.Header.Get("Status"); status {
	case "":
	case "204": // end of batch
		s.upTo, err = strconv.ParseUint(msg.Header.Get("Nats-UpTo-Sequence"), 10, 64)
		if err != nil {
			return true, errNoPosition
		}
		return true, nil
	case "404":
		return true, errNoPosition
	case "408":
		return true, errSnapshotUnsupported
	case "503":
		return true, nats.ErrNoResponders
	default:
		return true, fmt.Errorf("snapshot read: status %s %s", status, msg.Header.Get("Description"))
	}
	e, err := directEntry(msg)
	if err != nil {
		return true, err
	}
	key, ok := strings.CutPrefix(e.subject, prefix)
	if !ok {
		return true, errors.New("snapshot read: message of another bucket")
	}
	s.entries[key] = e
	return false, nil
}

// directEntry reads one message of a direct get answer.
func directEntry(msg *nats.Msg) (rawEntry, error) {
	seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return rawEntry{}, errors.New("snapshot read: message without a sequence")
	}
	created, err := time.Parse(time.RFC3339Nano, msg.Header.Get("Nats-Time-Stamp"))
	if err != nil {
		return rawEntry{}, errors.New("snapshot read: message without a time stamp")
	}
	return rawEntry{revision: seq, op: markerOp(msg.Header), value: msg.Data,
		subject: msg.Header.Get("Nats-Subject"), created: created,
		firstOfKey: msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader) == "0"}, nil
}
