package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/footstep/authz/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the key-value bucket that holds key and account records.
const DefaultBucket = "footstep-keys"

// ErrBucketName is returned for a bucket name NATS would refuse.
var ErrBucketName = errors.New("bucket name: want 1 to 64 of [A-Za-z0-9_-], not holding " + authz.KeyPrefix)

// NATS allows bucket names of letters, digits, '-' and '_'. The 64 limit is
// ours: the stream name KV_<bucket> must stay a short, portable file name.
var bucketNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// BucketConfig says which bucket to open and how to create it when missing.
type BucketConfig struct {
	// Name of the bucket; default DefaultBucket.
	Name string
	// Replicas is the replica count used when creating the bucket; default 1.
	// An existing bucket keeps its own count (a warning is logged).
	Replicas int
	// Logger receives the replica-mismatch warning; nil discards it.
	Logger *slog.Logger
}

// ValidBucketName reports whether name is a valid bucket name.
// A name holding the API key prefix is refused: it would be a key pasted into
// the wrong flag, and bucket names are logged.
func ValidBucketName(name string) bool {
	return bucketNameRe.MatchString(name) && !strings.Contains(name, authz.KeyPrefix)
}

// OpenBucket binds to the bucket, creating it when missing with one value per
// key (History 1), file storage, values of at most MaxValueSize bytes, no TTL,
// no size limits and no purging of delete markers: a resumed watch relies on
// delete markers to learn of deletions made while it was away, and a record
// or tombstone must never vanish without one. An existing bucket whose
// settings break that is refused with ErrBucketSettings and left unchanged
// (checkSettings says which settings and why).
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg BucketConfig) (jetstream.KeyValue, error) {
	name := cfg.Name
	if name == "" {
		name = DefaultBucket
	}
	if !ValidBucketName(name) {
		return nil, fmt.Errorf("open bucket %q: %w", authz.Clip(name), ErrBucketName)
	}
	replicas := max(cfg.Replicas, 1)
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, bucketSettings(name, replicas))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name) // another replica created it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	st, err := streamConfig(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	if err := checkSettings(st); err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	warnSettings(kv, st, replicas, cfg.Logger)
	return kv, nil
}

func bucketSettings(name string, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       name,
		Description:  "footstep-authz API key and account state",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
		MaxValueSize: MaxValueSize,
	}
}

// warnSettings logs settings of an existing bucket that differ from ours
// without breaking a guarantee; it changes nothing.
func warnSettings(kv jetstream.KeyValue, cfg jetstream.StreamConfig, want int, log *slog.Logger) {
	if log != nil && cfg.Replicas != want {
		log.Warn("bucket replica count differs from configuration; leaving it unchanged",
			"bucket", kv.Bucket(), "replicas", cfg.Replicas, "configured", want)
	}
}
