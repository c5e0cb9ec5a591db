package events

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrBucketSettings is returned by OpenBucket for an existing bucket whose
// settings could lose records or their deletions without anyone being told.
var ErrBucketSettings = errors.New("unsafe bucket settings")

// minValueSize is the smallest value limit a bucket may have: twice the
// largest record this package writes (a key record or a tombstone with
// 64-character ids is under 256 bytes).
const minValueSize = 512

// checkSettings refuses settings that break the watcher's guarantees. It
// repairs none: the bucket is shared with other replicas and tools, which
// would each race to change it, and a replica may not hold the rights to.
// The error names every setting at fault and the way out.
//   - A TTL (MaxAge) without limit markers removes expired records with no
//     delete marker: a resumed watch never learns of the expiry.
//   - A value limit below minValueSize refuses records or tombstones.
//   - Discard-old with a message or byte limit silently drops the oldest
//     records, tombstones and delete markers when the bucket is full;
//     discard-new refuses the write instead, loudly.
func checkSettings(cfg jetstream.StreamConfig) error {
	var faults []string
	if cfg.MaxAge > 0 && cfg.SubjectDeleteMarkerTTL <= 0 {
		faults = append(faults, fmt.Sprintf("TTL %s without limit markers (a resumed watch misses expirations): set a limit marker TTL or remove the TTL", cfg.MaxAge))
	}
	if cfg.MaxMsgSize > 0 && cfg.MaxMsgSize < minValueSize {
		faults = append(faults, fmt.Sprintf("max value size %d bytes, below %d (records could be refused): raise it", cfg.MaxMsgSize, minValueSize))
	}
	if cfg.Discard == jetstream.DiscardOld && (cfg.MaxBytes > 0 || cfg.MaxMsgs > 0) {
		faults = append(faults, "discard old with a byte or message limit (records and tombstones vanish when full): use discard new or remove the limit")
	}
	if len(faults) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrBucketSettings, strings.Join(faults, "; "))
}

// streamConfig reads the configuration of the bucket's stream.
func streamConfig(ctx context.Context, kv jetstream.KeyValue) (jetstream.StreamConfig, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return jetstream.StreamConfig{}, fmt.Errorf("read bucket status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		return jetstream.StreamConfig{}, errors.New("bucket status without stream info")
	}
	return bs.StreamInfo().Config, nil
}
