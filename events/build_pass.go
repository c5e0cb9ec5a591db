package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The pass reads the bucket's history up to the start of a lazy start
// (build.go), with values, from an ordered consumer of its own, and applies
// each entry to the key index and, through the rules, to the terminal state;
// never to the sink. The consumer keeps at most passBuffer messages in the
// client, so the pass's memory is bounded by those besides the index.
const (
	passBuffer = 1000
	passWait   = time.Second // a pause in delivery after which the pass checks whether it is done
	// passIdle is how long the server keeps the pass's consumer once
	// nobody reads it (a pass that ended without deleting it).
	passIdle = 30 * time.Second
)

// runPass runs the pass of b until it completes, b ends or ctx ends,
// retrying NATS failures with backoff.
func (w *Watcher) runPass(ctx context.Context, b *build) {
	defer w.passes.Done()
	backoff := w.cfg.MinBackoff
	for {
		done, err := w.passOnce(ctx, b)
		if done || ctx.Err() != nil {
			return
		}
		w.log.Warn("building the key index: reading the bucket failed; retrying", "err", err, "backoff", backoff)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// passOnce reads from after the pass's position with a new ordered
// consumer, until the pass is done or a read fails.
func (w *Watcher) passOnce(ctx context.Context, b *build) (bool, error) {
	w.mu.Lock()
	from := b.pos + 1
	w.mu.Unlock()
	stream := "KV_" + w.kv.Bucket()
	cons, err := w.conn.JetStream().OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from, InactiveThreshold: passIdle,
	})
	if err != nil {
		return false, fmt.Errorf("build key index of bucket %s: %w", w.kv.Bucket(), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(passBuffer))
	if err != nil {
		return false, fmt.Errorf("build key index of bucket %s: %w", w.kv.Bucket(), err)
	}
	defer func() {
		it.Stop()
		w.deleteConsumer(stream, cons)
	}()
	w.setPassConsumer(b, cons)
	defer w.setPassConsumer(b, nil)
	for n := 0; ; n++ {
		if n%passBuffer == 0 && !w.passGateOpen(ctx) {
			return false, ctx.Err()
		}
		done, err := w.passNext(ctx, b, it)
		if done || err != nil {
			return done, err
		}
	}
}

// deleteConsumer removes the pass's consumer from the server, which would
// otherwise keep it for passIdle.
func (w *Watcher) deleteConsumer(stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	if err := w.conn.JetStream().DeleteConsumer(ctx, stream, info.Name); err != nil {
		w.log.Debug("delete the key index build's consumer", "err", err)
	}
}

// passNext applies the next message of the pass. done is true once the
// pass has applied everything up to b.upTo, or b has ended.
func (w *Watcher) passNext(ctx context.Context, b *build, it jetstream.MessagesContext) (bool, error) {
	next, cancel := context.WithTimeout(ctx, passWait)
	msg, err := it.Next(jetstream.NextContext(next))
	cancel()
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		if w.nothingLeft(ctx, b) {
			return w.finishPass(b), nil
		}
		return false, nil
	case err != nil:
		return false, err
	}
	e, md, err := passEntry(msg, w.kv.Bucket())
	switch {
	case err != nil:
		w.log.Warn("building the key index: unreadable message skipped", "err", err)
		w.mu.Lock()
		b.took(md)
		w.mu.Unlock()
		return false, nil
	case e.revision > b.upTo:
		return w.finishPass(b), nil
	case !w.applyBase(b, e, md):
		return true, nil
	case e.revision == b.upTo || md.NumPending == 0:
		return w.finishPass(b), nil
	}
	return false, nil
}

func (w *Watcher) passGateOpen(ctx context.Context) bool {
	if w.cfg.BuildGate == nil {
		return true
	}
	select {
	case <-w.cfg.BuildGate:
		return true
	case <-ctx.Done():
		return false
	}
}

// passEntry turns a message of the pass into a bucket entry, with its
// metadata (nil when it has none).
func passEntry(msg jetstream.Msg, bucket string) (*seqEntry, *jetstream.MsgMetadata, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, nil, err
	}
	key, ok := strings.CutPrefix(msg.Subject(), "$KV."+bucket+".")
	if !ok || key == "" {
		return nil, md, errors.New("message of another bucket")
	}
	return &seqEntry{bucket: bucket, key: key, value: msg.Data(),
		revision: md.Sequence.Stream, created: md.Timestamp, op: markerOp(msg.Headers())}, md, nil
}

// nothingLeft reports whether the bucket holds no message after the pass's
// position up to b.upTo: the history before it was superseded or removed.
func (w *Watcher) nothingLeft(ctx context.Context, b *build) bool {
	w.mu.Lock()
	from := b.pos + 1
	w.mu.Unlock()
	e, err := w.seq.next(ctx, from)
	return errors.Is(err, errNoMessage) || err == nil && e.Revision() > b.upTo
}

// applyBase applies one entry of the history, unless b has ended; md is
// the metadata of its message (nil when none).
func (w *Watcher) applyBase(b *build, e *seqEntry, md *jetstream.MsgMetadata) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.build != b {
		return false
	}
	k := ParseKVKey(e.key)
	fp, isKey := w.index.fingerprintOf(k, e.key)
	w.index.record(fp, isKey, e.revision)
	if _, changed := b.firstKey[k.Hash]; changed && k.Kind == KindKey {
		b.baseRev[k.Hash] = e.revision // read before a live change replaced it
	}
	switch k.Kind {
	case KindKey, KindTombstone:
		w.quiet.change(k, e)
	case KindAccount:
		if _, err := DecodeAccount(e.value); e.op == jetstream.KeyValuePut && err != nil {
			w.badRecord(e, err.Error())
		}
	default:
		w.badRecord(e, "kv key is neither key.<sha256 hex>, revoked.<sha256 hex> nor account.<id>")
	}
	b.pos = e.revision
	b.took(md)
	if b.waiters > 0 {
		close(b.progress)
		b.progress = make(chan struct{})
	}
	return true
}

// finishPass completes b if it is still the build in progress.
func (w *Watcher) finishPass(b *build) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.build == b {
		w.completeBuild(b)
	}
	return true
}

// passCaughtUp waits until the pass has applied every message its consumer
// had been sent when it was called, or b has ended. A message the pass was
// sent before a later change removed it from the stream is then applied
// (build_verdict.go).
func (w *Watcher) passCaughtUp(ctx context.Context, b *build) error {
	w.mu.Lock()
	cons := b.consumer
	w.mu.Unlock()
	if cons == nil {
		return nil // not reading: nothing sent is waiting
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("wait for the key index build: %w", err)
	}
	w.mu.Lock()
	b.waiters++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		b.waiters--
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		ok, progress := b.ended || b.pos >= info.Delivered.Stream || b.tookAll(info), b.progress
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the key index build: %w", ctx.Err())
		case <-progress:
		}
	}
}

// took records that the pass took the message described by md from its
// consumer. Callers hold mu.
func (b *build) took(md *jetstream.MsgMetadata) {
	if md != nil {
		b.sentBy, b.sentSeq = md.Consumer, md.Sequence.Consumer
	}
}

// tookAll reports whether the pass has taken every message the server
// consumer described by info had sent: it sent none, or the last one it
// sent was taken. The consumer's delivered stream sequence alone does not
// tell: a consumer starts past the messages already removed from the stream
// (superseded by a later change of their KV key), and counts them as
// delivered though it never sent them. Callers hold mu.
func (b *build) tookAll(info *jetstream.ConsumerInfo) bool {
	return info.Delivered.Consumer == 0 || b.sentBy == info.Name && b.sentSeq >= info.Delivered.Consumer
}

// setPassConsumer records the consumer the pass reads from; nil between
// consumers.
func (w *Watcher) setPassConsumer(b *build, cons jetstream.Consumer) {
	w.mu.Lock()
	b.consumer = cons
	w.mu.Unlock()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
