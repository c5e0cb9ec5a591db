package envoy

import (
	"context"
	"log/slog"

	"github.com/footstep/authz/authz"
)

// logResult writes what a decision is worth logging, never the credential:
// a warning when a state could not be read, and at debug level one line per
// denial (in shadow mode, per request that would have been denied).
func logResult(ctx context.Context, log *slog.Logger, r *Result, requestID string) {
	if r.Err != nil {
		log.WarnContext(ctx, "key state unreadable", "code", r.Code.String(), "request_id", clipped(requestID), "error", r.Err)
		return
	}
	if r.Code == authz.CodeOK || !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	msg := "denied"
	if r.Shadow {
		msg = "shadow: would deny"
	}
	log.DebugContext(ctx, msg, "code", r.Code.String(), "surface", r.Surface.String(),
		"request_id", clipped(requestID), "key_id", r.Key.KeyID)
}

// clipped bounds untrusted text written to logs.
func clipped(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max]
	}
	return s
}
