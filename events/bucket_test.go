package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOpenBucketRefusesUnsafeSettings: an existing bucket whose settings
// could lose records or their deletions silently is refused with one line
// naming the fault, and left as it was; safe variants open.
func TestOpenBucketRefusesUnsafeSettings(t *testing.T) {
	tests := []struct {
		name       string
		cfg        jetstream.KeyValueConfig
		discardOld bool
		want       string // "" for a bucket that opens
	}{
		{"ttl without markers", jetstream.KeyValueConfig{TTL: time.Hour}, false, "TTL 1h0m0s without limit markers"},
		{"ttl with markers", jetstream.KeyValueConfig{TTL: time.Hour, LimitMarkerTTL: time.Minute}, false, ""},
		{"small values", jetstream.KeyValueConfig{MaxValueSize: 100}, false, "max value size 100 bytes"},
		{"large values", jetstream.KeyValueConfig{MaxValueSize: 4096}, false, ""},
		{"size limit, discard new", jetstream.KeyValueConfig{MaxBytes: 1 << 20}, false, ""},
		{"size limit, discard old", jetstream.KeyValueConfig{MaxBytes: 1 << 20}, true, "discard old with a byte or message limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ctx := startConn(t)
			tt.cfg.Bucket = events.DefaultBucket
			if _, err := c.JetStream().CreateKeyValue(ctx, tt.cfg); err != nil {
				t.Fatal(err)
			}
			if tt.discardOld {
				s, err := c.JetStream().Stream(ctx, "KV_"+events.DefaultBucket)
				if err != nil {
					t.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				cfg.Discard = jetstream.DiscardOld
				if _, err := c.JetStream().UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			_, err := events.OpenBucket(ctx, c.JetStream(), events.BucketConfig{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("OpenBucket = %v; want it open", err)
			case tt.want != "" && (!errors.Is(err, events.ErrBucketSettings) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n")):
				t.Errorf("OpenBucket = %v; want one line with ErrBucketSettings and %q", err, tt.want)
			}
		})
	}
}

func TestOpenBucketSettings(t *testing.T) {
	c, ctx, kv := startBucket(t)
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.Config()
	if cfg.History != 1 || cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 ||
		cfg.MaxValueSize != events.MaxValueSize || cfg.TTL != 0 || kv.Bucket() != events.DefaultBucket {
		t.Errorf("bucket config = %+v; want history 1, file, R1, max value %d, no TTL", cfg, events.MaxValueSize)
	}
	if _, err := events.OpenBucket(ctx, c.JetStream(), events.BucketConfig{}); err != nil {
		t.Errorf("second OpenBucket: %v", err)
	}
	for _, name := range []string{"bad.name", "a b", "x>", strings.Repeat("b", 65)} {
		_, err := events.OpenBucket(ctx, c.JetStream(), events.BucketConfig{Name: name})
		if !errors.Is(err, events.ErrBucketName) {
			t.Errorf("OpenBucket(%q) = %v; want ErrBucketName", name, err)
		}
	}
}
