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
// consumer can wait for a JetStream meta leader election, and at a lazy
// start to find the bucket's first message and whether history is left to
// read (build.go).
//
// It sends STREAM.MSG.GET requests, which only the stream leader answers; a
// direct get could be answered by a follower that is behind.
type seqReader struct {
	nc      *nats.Conn
	subject string // $JS.API.STREAM.MSG.GET.<stream>
	prefix  string // $KV.<bucket>.
	bucket  string
}

// nextFilter is the subject filter of the reads: every subject. The bucket's
// stream holds only $KV.<bucket>.>, and a read with that filter from the
// start of the stream costs the server a walk over every KV key, where ">"
// costs nothing.
const nextFilter = ">"

func newSeqReader(nc *nats.Conn, bucket string) *seqReader {
	return &seqReader{
		nc:      nc,
		subject: "$JS.API.STREAM.MSG.GET.KV_" + bucket,
		prefix:  "$KV." + bucket + ".",
		bucket:  bucket,
	}
}

type seqGetRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj"`
}

// next returns the first entry of the bucket at sequence seq or after it.
func (r *seqReader) next(ctx context.Context, seq uint64) (jetstream.KeyValueEntry, error) {
	req, err := json.Marshal(seqGetRequest{Seq: seq, NextFor: nextFilter})
	if err != nil {
		return nil, err
	}
	msg, err := leaderRequest(ctx, r.nc, r.subject, req)
	if err != nil {
		return nil, fmt.Errorf("read bucket %s at sequence %d: %w", r.bucket, seq, err)
	}
	e, found, err := parseMsgGet(msg.Data)
	switch {
	case err != nil:
		return nil, fmt.Errorf("read bucket %s at sequence %d: %w", r.bucket, seq, err)
	case !found:
		return nil, errNoMessage
	case e.revision < seq || !strings.HasPrefix(e.subject, r.prefix):
		return nil, fmt.Errorf("read bucket %s at sequence %d: malformed response", r.bucket, seq)
	}
	return &seqEntry{bucket: r.bucket, key: strings.TrimPrefix(e.subject, r.prefix), value: e.value,
		revision: e.revision, created: e.created, op: e.op}, nil
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
