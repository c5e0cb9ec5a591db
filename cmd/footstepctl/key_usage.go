package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

// keyUsedOut is a key as key get prints it: its record and when it was last
// used, as the footstep-authz replicas merged it into the usage bucket.
type keyUsedOut struct {
	keyOut
	// Expired is true once expires_at has passed: the key answers
	// key_revoked and is terminal, whatever its state says.
	Expired bool `json:"expired,omitempty"`
	// LastUsed is the last time a replica decided on the key (RFC 3339,
	// UTC); empty when no replica recorded a use.
	LastUsed string `json:"last_used"`
}

func (k keyUsedOut) header() []string { return append(k.keyOut.header(), "LAST_USED") }
func (k keyUsedOut) row() []string    { return append(k.keyOut.row(), lastUsedCell(k.LastUsed)) }

func lastUsedCell(s string) string {
	if s == "" {
		return "never"
	}
	return s
}

// withLastUsed adds the key's last use to out. The usage bucket is advisory:
// when it cannot be read, a warning goes to standard error and last_used
// stays empty.
func (e *cmdEnv) withLastUsed(ctx context.Context, h authz.KeyHash, out keyOut) keyUsedOut {
	used := keyUsedOut{keyOut: out}
	if exp, err := authz.ParseExpiry(out.ExpiresAt); err == nil && !time.Now().Before(exp) {
		used.Expired = true
	}
	at, err := e.lastUsed(ctx, h)
	if err != nil {
		fmt.Fprintf(e.stderr, "footstepctl: warning: last use unknown: %v\n", err)
	}
	if !at.IsZero() {
		used.LastUsed = at.UTC().Format(time.RFC3339)
	}
	return used
}

// lastUsed reads the key's usage record; the zero time when there is none.
func (e *cmdEnv) lastUsed(ctx context.Context, h authz.KeyHash) (time.Time, error) {
	kv, closeConn, err := e.openUsage(ctx)
	if err != nil || kv == nil {
		return time.Time{}, err
	}
	defer closeConn()
	u, _, err := events.GetUsage(ctx, kv, h)
	if errors.Is(err, events.ErrNotFound) {
		return time.Time{}, nil
	}
	return u.LastSeen, err
}

// openUsage binds the usage bucket on a connection of its own; kv is nil
// when the bucket does not exist (no replica tracked usage yet).
func (e *cmdEnv) openUsage(ctx context.Context) (kv jetstream.KeyValue, closeConn func(), err error) {
	conn, err := e.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	kv, err = conn.JetStream().KeyValue(ctx, events.DefaultUsageBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		conn.Close()
		return nil, nil, nil
	case err != nil:
		conn.Close()
		return nil, nil, fmt.Errorf("open usage bucket %s: %w", events.DefaultUsageBucket, err)
	}
	return kv, conn.Close, nil
}

// readUsage returns the last use of every key in the usage bucket; empty
// when the bucket does not exist.
func (e *cmdEnv) readUsage(ctx context.Context) (map[authz.KeyHash]time.Time, error) {
	last := map[authz.KeyHash]time.Time{}
	kv, closeConn, err := e.openUsage(ctx)
	if err != nil || kv == nil {
		return last, err
	}
	defer closeConn()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read usage bucket %s: %w", events.DefaultUsageBucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case entry, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, errors.New("usage bucket watch closed before its end")
			case entry == nil:
				return last, nil
			}
			if u, err := events.DecodeUsage(entry.Value()); err == nil {
				h, _ := authz.ParseKeyHash(u.KeyHash)
				last[h] = u.LastSeen
			}
		}
	}
}
