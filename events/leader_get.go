package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultReadTimeout bounds a leader read whose context has no deadline.
const DefaultReadTimeout = 5 * time.Second

// The headers a KV marker carries: KV-Operation for a delete or purge, and
// Nats-Marker-Reason for a marker the server wrote (an expiry).
const (
	kvOperationHeader = "KV-Operation"
	markerReasonHdr   = jetstream.MarkerReasonHeader
)

// rawEntry is the last message of a KV key as the stream leader holds it.
type rawEntry struct {
	revision uint64
	op       jetstream.KeyValueOp
	value    []byte
	subject  string    // the message's subject, $KV.<bucket>.<kv key>
	created  time.Time // when the stream stored it
	// created only if the KV key had no message: written with an expected
	// last subject sequence of 0 (a KV Create), which the server enforces.
	// Known from snapshot reads only.
	firstOfKey bool
}

// msgGetResponse is the JetStream API's answer to STREAM.MSG.GET.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message"`
}

// leaderGet reads the last message of a KV key through the stream leader.
//
// The jetstream package reads with a direct get whenever the stream allows
// it, and a direct get may be answered by a follower that is behind or cut
// off in a minority. The STREAM.MSG.GET API request is answered by the
// leader alone, which has the cluster's acknowledged state. found is false
// when the key has no message; a delete or purge marker is found, with its
// op and revision. It assumes no JetStream domain or API prefix, as Connect
// sets none.
func leaderGet(ctx context.Context, nc *nats.Conn, bucket, kvKey string) (rawEntry, bool, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadTimeout)
		defer cancel()
	}
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{"$KV." + bucket + "." + kvKey})
	if err != nil {
		return rawEntry{}, false, err
	}
	msg, err := leaderRequest(ctx, nc, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return rawEntry{}, false, err
	}
	return parseMsgGet(msg.Data)
}

// leaderResend is how often a request to the stream leader is sent again
// while unanswered. Only the leader answers STREAM.MSG.GET; the other
// replicas ignore it, so a request sent while the stream elects a leader (a
// stepdown, a lost node) is never answered, and waiting out the whole
// deadline would turn a few milliseconds of election into a timeout.
const leaderResend = 250 * time.Millisecond

// leaderRequest sends req to the stream leader and waits until ctx ends for
// the first answer, sending the request again every leaderResend (reads are
// idempotent). Every copy carries the same reply subject, so a slow answer
// to an early copy counts as much as one to the last.
//
// The answer arrives on a channel of one message, the subscription ending
// after it: a synchronous subscription would allocate the connection's
// default queue of 65,536 messages (512 KiB) for every read, which made
// each cache miss as costly in memory as a thousand cached keys.
func leaderRequest(ctx context.Context, nc *nats.Conn, subject string, req []byte) (*nats.Msg, error) {
	inbox := nc.NewRespInbox()
	answers := make(chan *nats.Msg, 1)
	sub, err := nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := sub.AutoUnsubscribe(1); err != nil {
		return nil, err
	}
	resend := time.NewTicker(leaderResend)
	defer resend.Stop()
	for {
		if err := nc.PublishRequest(subject, inbox, req); err != nil {
			return nil, err
		}
		select {
		case msg := <-answers:
			if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
				return nil, nats.ErrNoResponders
			}
			return msg, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-resend.C:
		}
	}
}

// parseMsgGet reads a STREAM.MSG.GET response.
func parseMsgGet(data []byte) (rawEntry, bool, error) {
	var resp msgGetResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return rawEntry{}, false, fmt.Errorf("leader get: unreadable response: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return rawEntry{}, false, nil
	case resp.Error != nil:
		return rawEntry{}, false, resp.Error
	case resp.Message == nil:
		return rawEntry{}, false, errors.New("leader get: response without a message")
	}
	m := resp.Message
	e := rawEntry{revision: m.Seq, op: jetstream.KeyValuePut, value: m.Data, subject: m.Subject, created: m.Time}
	if len(m.Header) == 0 {
		return e, true, nil
	}
	hdr, err := nats.DecodeHeadersMsg(m.Header)
	if err != nil {
		return rawEntry{}, false, fmt.Errorf("leader get: unreadable headers: %w", err)
	}
	e.op = markerOp(hdr)
	return e, true, nil
}

// markerOp tells a put from a delete or purge marker, as the KV client does.
func markerOp(hdr nats.Header) jetstream.KeyValueOp {
	switch hdr.Get(kvOperationHeader) {
	case "DEL":
		return jetstream.KeyValueDelete
	case "PURGE":
		return jetstream.KeyValuePurge
	}
	switch hdr.Get(markerReasonHdr) {
	case "MaxAge", "Purge":
		return jetstream.KeyValuePurge
	case "Remove":
		return jetstream.KeyValueDelete
	}
	return jetstream.KeyValuePut
}
