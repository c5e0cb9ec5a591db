package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errNoMessage reports that the stream holds no message at or after the
// sequence asked for.
var errNoMessage = errors.New("no message at or after that sequence")

// seqReader reads a bucket's stream by sequence through the stream leader,
// without a consumer: the watcher uses it to fill a gap when its watch went
// quiet behind the stream (its consumer's node died), since creating a new
// consumer can wait for a JetStream meta leader election.
//
// It sends STREAM.MSG.GET requests, which only the stream leader answers; a
// direct get could be answered by a follower that is behind.
type seqReader struct {
	nc      *nats.Conn
	subject string // $JS.API.STREAM.MSG.GET.<stream>
	filter  string // $KV.<bucket>.>
	prefix  string // $KV.<bucket>.
	bucket  string
}

func newSeqReader(nc *nats.Conn, bucket string) *seqReader {
	return &seqReader{
		nc:      nc,
		subject: "$JS.API.STREAM.MSG.GET.KV_" + bucket,
		filter:  "$KV." + bucket + ".>",
		prefix:  "$KV." + bucket + ".",
		bucket:  bucket,
	}
}

type seqGetRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj"`
}

type seqGetResponse struct {
	Error   *jetstream.APIError `json:"error"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message"`
}

// next returns the first entry of the bucket at sequence seq or after it.
func (r *seqReader) next(ctx context.Context, seq uint64) (jetstream.KeyValueEntry, error) {
	req, err := json.Marshal(seqGetRequest{Seq: seq, NextFor: r.filter})
	if err != nil {
		return nil, err
	}
	msg, err := leaderRequest(ctx, r.nc, r.subject, req)
	if err != nil {
		return nil, fmt.Errorf("read bucket %s at sequence %d: %w", r.bucket, seq, err)
	}
	var resp seqGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("read bucket %s at sequence %d: bad response: %w", r.bucket, seq, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, errNoMessage
	case resp.Error != nil:
		return nil, fmt.Errorf("read bucket %s at sequence %d: %w", r.bucket, seq, resp.Error)
	case resp.Message == nil || resp.Message.Seq < seq || !strings.HasPrefix(resp.Message.Subject, r.prefix):
		return nil, fmt.Errorf("read bucket %s at sequence %d: malformed response", r.bucket, seq)
	}
	m := resp.Message
	op := jetstream.KeyValuePut
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return nil, fmt.Errorf("read bucket %s at sequence %d: headers: %w", r.bucket, seq, err)
		}
		op = markerOp(h)
	}
	return &seqEntry{bucket: r.bucket, key: strings.TrimPrefix(m.Subject, r.prefix), value: m.Data,
		revision: m.Seq, created: m.Time, op: op}, nil
}

// seqEntry is a bucket entry read by sequence; it implements
// jetstream.KeyValueEntry.
type seqEntry struct {
	bucket, key string
	value       []byte
	revision    uint64
	created     time.Time
	op          jetstream.KeyValueOp
}

func (e *seqEntry) Bucket() string                  { return e.bucket }
func (e *seqEntry) Key() string                     { return e.key }
func (e *seqEntry) Value() []byte                   { return e.value }
func (e *seqEntry) Revision() uint64                { return e.revision }
func (e *seqEntry) Created() time.Time              { return e.created }
func (e *seqEntry) Delta() uint64                   { return 0 }
func (e *seqEntry) Operation() jetstream.KeyValueOp { return e.op }
