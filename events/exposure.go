package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go"
)

// ExposureSubject is the core NATS subject of key exposure events.
const ExposureSubject = "footstep.events.key_exposed"

// DefaultExposureInterval is how long reports of one key are deduplicated.
const DefaultExposureInterval = time.Minute

// maxExposureSeen bounds the dedupe table; past it, expired entries are swept.
const maxExposureSeen = 4096

// ExposureEvent is the JSON body published on ExposureSubject.
type ExposureEvent struct {
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id"`
	KeyHash   string `json:"key_hash"`
	Source    string `json:"source"` // "query_string"
	At        string `json:"at"`     // RFC 3339
}

// ExposureConfig tunes an ExposurePublisher. Every field is optional.
type ExposureConfig struct {
	// Interval is how long further reports of the same key are dropped after
	// one is published; default DefaultExposureInterval.
	Interval time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// ExposurePublisher publishes that a known key was seen in a query string, at
// most once per key per interval, so a client hammering a leaked URL does not
// flood the subject. Publishing is core NATS: at most once, best effort.
type ExposurePublisher struct {
	nc       *nats.Conn
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[authz.KeyHash]time.Time // when each key was last published
}

// NewExposurePublisher returns an ExposurePublisher publishing on nc.
func NewExposurePublisher(nc *nats.Conn, cfg ExposureConfig) *ExposurePublisher {
	p := &ExposurePublisher{nc: nc, interval: cfg.Interval, now: cfg.Now, seen: make(map[authz.KeyHash]time.Time)}
	if p.interval <= 0 {
		p.interval = DefaultExposureInterval
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// ReportExposure publishes an exposure event for the key with hash h and
// record rec, unless one was published within the interval. It reports
// whether it published. The event holds the hash and ids, never the key.
func (p *ExposurePublisher) ReportExposure(ctx context.Context, h authz.KeyHash, rec authz.KeyRecord) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("report exposure of %s: %w", h, err)
	}
	now := p.now()
	if !p.claim(h, now) {
		return false, nil
	}
	body, err := json.Marshal(ExposureEvent{
		KeyID: rec.KeyID, AccountID: rec.AccountID, KeyHash: h.String(),
		Source: "query_string", At: now.UTC().Format(time.RFC3339),
	})
	if err == nil {
		err = p.nc.Publish(ExposureSubject, body)
	}
	if err != nil {
		p.release(h)
		return false, fmt.Errorf("report exposure of %s: %w", h, err)
	}
	return true, nil
}

// claim records a publication of h at now unless one is within the interval.
func (p *ExposurePublisher) claim(h authz.KeyHash, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.seen[h]; ok && now.Sub(last) < p.interval {
		return false
	}
	if len(p.seen) >= maxExposureSeen {
		p.sweep(now)
	}
	p.seen[h] = now
	return true
}

// release forgets a claim whose publication failed, so the next report retries.
func (p *ExposurePublisher) release(h authz.KeyHash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.seen, h)
}

// sweep drops expired entries; p.mu must be held.
func (p *ExposurePublisher) sweep(now time.Time) {
	for h, last := range p.seen {
		if now.Sub(last) >= p.interval {
			delete(p.seen, h)
		}
	}
}
