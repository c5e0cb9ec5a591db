package main

import (
	"context"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/nats-io/nats.go/jetstream"
)

// rawBucket opens the bucket as a NATS client writing around footstepctl would.
func rawBucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	ctx := context.Background()
	conn, err := events.Connect(ctx, events.ConnConfig{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	kv, err := conn.JetStream().KeyValue(ctx, events.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestKeyRevivedAroundFootstepctl: a revoked key written back as active by
// another client shows revoked, with its tombstone; changes other than a
// delete are refused; key delete clears record and tombstone, after which the
// key can be put again.
func TestKeyRevivedAroundFootstepctl(t *testing.T) {
	c := newCLI(t)
	h := authz.APIKey(testKey).Hash()
	c.ok("", "key", "put", "--key", testKey, "--account", "acct_9", "--id", "key_1")
	c.ok("", "key", "revoke", "--key", testKey)
	kv := rawBucket(t, c.url)
	if _, err := kv.Put(context.Background(), events.KeyKVKey(h), []byte(`{"key_id":"key_1","account_id":"acct_9","state":"active"}`)); err != nil {
		t.Fatal(err)
	}
	got := decodeKeyOut(t, c.ok("", "key", "get", "--key", testKey))
	if got.State != "revoked" || !got.Tombstone || got.TombstoneRevision == 0 || got.StoredState != "active" {
		t.Errorf("key get after a revival = %+v; want revoked by its tombstone, stored active", got)
	}
	if out, err := c.run("", "export"); err != nil || !strings.Contains(out, `"state":"revoked"`) {
		t.Errorf("export of a revived key = %q, %v; want it revoked", out, err)
	}
	before := lastSeq(t, c.url)
	for _, args := range [][]string{
		{"key", "reactivate", "--key", testKey},
		{"key", "suspend", "--key", testKey},
		{"key", "put", "--key", testKey, "--account", "acct_9"},
	} {
		if _, err := c.run("", args...); err == nil || !strings.Contains(err.Error(), "revoked") || strings.Contains(err.Error(), "\n") {
			t.Errorf("footstepctl %v = %v; want a one-line revoked refusal", args, err)
		}
	}
	if after := lastSeq(t, c.url); after != before {
		t.Errorf("refused changes wrote: last sequence %d -> %d", before, after)
	}
	c.ok("", "key", "delete", "--key", testKey)
	if _, err := kv.Get(context.Background(), events.TombstoneKVKey(h)); err == nil {
		t.Error("key delete left the tombstone")
	}
	if got := decodeKeyOut(t, c.ok("", "key", "put", "--key", testKey, "--account", "acct_9")); got.State != "active" {
		t.Errorf("key put after delete = %+v; want a new active key", got)
	}
}

// TestKeyTombstoneWithoutRecord: a key deleted and put again around
// footstepctl while no replica ran keeps its tombstone: key get says so,
// key put is refused, and key delete clears it.
func TestKeyTombstoneWithoutRecord(t *testing.T) {
	c := newCLI(t)
	h := authz.APIKey(testKey).Hash()
	c.ok("", "key", "put", "--key", testKey, "--account", "acct_9")
	c.ok("", "key", "revoke", "--key", testKey)
	kv := rawBucket(t, c.url)
	if err := kv.Delete(context.Background(), events.KeyKVKey(h)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run("", "key", "get", "--key", testKey); err == nil || !strings.Contains(err.Error(), "tombstone") {
		t.Errorf("key get of a tombstone alone = %v; want not found, naming the tombstone", err)
	}
	if _, err := c.run("", "key", "put", "--key", testKey, "--account", "acct_9"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("key put over a tombstone = %v; want a revoked refusal", err)
	}
	c.ok("", "key", "delete", "--key", testKey)
	if got := decodeKeyOut(t, c.ok("", "key", "put", "--key", testKey, "--account", "acct_9")); got.State != "active" || got.Tombstone {
		t.Errorf("key put after delete = %+v; want a new active key", got)
	}
	if _, err := c.run("", "export"); err != nil {
		t.Errorf("export = %v", err)
	}
}
