package envoy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/footstep/authz/authz"
)

// DefaultLogInterval is how often, at most, a line of one kind and code is
// written when EngineConfig.LogInterval is zero.
const DefaultLogInterval = time.Second

// logKind is one kind of line that requests can cause.
type logKind uint8

const (
	logUnreadable     logKind = iota // warning: a state could not be read
	logDenied                        // debug: a denial
	logShadowDenied                  // debug: shadow mode, a denial not enforced
	logUnknownSurface                // warning: the request names no known surface
	logKinds
)

// lines says how each kind of line is written.
var lines = [logKinds]struct {
	level slog.Level
	msg   string
}{
	logUnreadable:     {slog.LevelWarn, "key state unreadable"},
	logDenied:         {slog.LevelDebug, "denied"},
	logShadowDenied:   {slog.LevelDebug, "shadow: would deny"},
	logUnknownSurface: {slog.LevelWarn, "unknown surface; using api"},
}

// logCodes is the number of codes a limiter tells apart; a code beyond the
// known ones shares the last slot.
const logCodes = int(authz.CodeOK) + 2

// logLimiter writes at most one line per kind and code per interval, and
// counts the lines it holds back; the next line written for that kind and
// code carries the count as "suppressed". So a client spraying bad keys
// costs a few lines a second, however fast it goes. Safe for concurrent
// use: one atomic compare-and-swap decides which caller writes.
type logLimiter struct {
	now      func() time.Time
	start    time.Time // what slot times count from, on the monotonic clock
	interval time.Duration
	slots    [logKinds][logCodes]logSlot
}

type logSlot struct {
	next       atomic.Int64 // nanoseconds after start before which lines are held back
	suppressed atomic.Int64 // lines held back since the last one written
}

func newLogLimiter(now func() time.Time, interval time.Duration) *logLimiter {
	return &logLimiter{now: now, start: now(), interval: interval}
}

// allow reports whether a line of kind k and code c may be written now and,
// when it may, how many were held back since the last one. Every call is
// either allowed or counted, so the counts add up.
func (l *logLimiter) allow(k logKind, c authz.Code) (suppressed int64, ok bool) {
	s := &l.slots[k][min(int(c), logCodes-1)]
	now := int64(l.now().Sub(l.start)) // monotonic: a wall clock step back holds nothing up
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(l.interval)) {
		s.suppressed.Add(1)
		return 0, false
	}
	return s.suppressed.Swap(0), true
}

// admit reports whether a line of kind k and code c is to be written: the
// logger takes its level and the limiter lets it through. n is how many
// were held back since the last one. Callers build the line's attributes
// only when it is admitted, which keeps denials free of allocations.
func (l *logLimiter) admit(ctx context.Context, log *slog.Logger, k logKind, c authz.Code) (n int64, ok bool) {
	if !log.Enabled(ctx, lines[k].level) {
		return 0, false
	}
	return l.allow(k, c)
}

// flush writes, for every kind and code with lines held back, one line with
// their count, and clears the counts.
func (l *logLimiter) flush(ctx context.Context, log *slog.Logger) {
	for k := range l.slots {
		for c := range l.slots[k] {
			n := l.slots[k][c].suppressed.Swap(0)
			if n == 0 {
				continue
			}
			attrs := []any{"suppressed", n}
			if logKind(k) != logUnknownSurface {
				attrs = append(attrs, "code", authz.Code(c).String())
			}
			log.Log(ctx, lines[k].level, lines[k].msg+" (held back)", attrs...)
		}
	}
}

// logResult writes what a decision is worth logging, never the credential:
// a warning when a state could not be read, and at debug level a line per
// denial (in shadow mode, per request that would have been denied); both
// limited per code by the engine's limiter.
func (e *Engine) logResult(ctx context.Context, log *slog.Logger, r *Result, requestID string) {
	if r.Err != nil {
		if n, ok := e.logs.admit(ctx, log, logUnreadable, r.Code); ok {
			log.Log(ctx, lines[logUnreadable].level, lines[logUnreadable].msg, "code", r.Code.String(),
				"request_id", authz.Clip(requestID), "error", r.Err, "suppressed", n)
		}
		return
	}
	if r.Code == authz.CodeOK {
		return
	}
	kind := logDenied
	if r.Shadow {
		kind = logShadowDenied
	}
	if n, ok := e.logs.admit(ctx, log, kind, r.Code); ok {
		log.Log(ctx, lines[kind].level, lines[kind].msg, "code", r.Code.String(), "surface", r.Surface.String(),
			"request_id", authz.Clip(requestID), "key_id", r.Key.KeyID, "suppressed", n)
	}
}

// logUnknownSurface warns, within the limiter's bounds, that a request
// named a surface that does not exist (from: a header or the route).
func (e *Engine) logUnknownSurface(ctx context.Context, log *slog.Logger, from, surface string) {
	if n, ok := e.logs.admit(ctx, log, logUnknownSurface, authz.CodeOK); ok {
		log.Log(ctx, lines[logUnknownSurface].level, lines[logUnknownSurface].msg,
			"from", from, "surface", authz.Clip(surface), "suppressed", n)
	}
}

// FlushLogs writes to the engine's Logger one line for each kind of
// warning or denial whose repeats were held back since its last line, with
// their count as "suppressed". Call it at shutdown so that no count is lost;
// until then each count is carried by the next line of its kind.
func (e *Engine) FlushLogs(ctx context.Context) { e.logs.flush(ctx, e.log) }
