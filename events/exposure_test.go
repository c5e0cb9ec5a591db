package events_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

func TestExposurePublisher(t *testing.T) {
	c, ctx := startConn(t)
	sub, err := c.NATS().SubscribeSync(events.ExposureSubject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := events.NewExposurePublisher(c.NATS(), events.ExposureConfig{Interval: time.Minute, Now: func() time.Time { return now }})
	const key = "sk_live_leakedKey123"
	h := hashOf(key)
	rec := authz.KeyRecord{KeyID: "k1", AccountID: "a1", State: authz.StateActive}

	for i, want := range []bool{true, false, false} {
		if got, err := p.ReportExposure(ctx, h, rec); err != nil || got != want {
			t.Fatalf("report %d = %v, %v; want %v", i, got, err, want)
		}
	}
	now = now.Add(time.Minute)
	if got, _ := p.ReportExposure(ctx, h, rec); !got {
		t.Errorf("report after the interval was deduplicated")
	}
	for i := range 2 {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if strings.Contains(string(m.Data), key) || strings.Contains(string(m.Data), "sk_live_") {
			t.Fatalf("event carries the key: %s", m.Data)
		}
		var ev events.ExposureEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		want := events.ExposureEvent{KeyID: "k1", AccountID: "a1", KeyHash: h.String(), Source: "query_string", At: ev.At}
		if ev != want || ev.At == "" {
			t.Errorf("event = %+v; want %+v", ev, want)
		}
	}
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("unexpected third event: %s", m.Data)
	}
}
