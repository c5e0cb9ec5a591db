package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// rawPut writes a value around footstepctl and returns its revision.
func rawPut(t *testing.T, url, kvKey, value string) uint64 {
	t.Helper()
	rev, err := rawBucket(t, url).Put(context.Background(), kvKey, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return rev
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
	rawPut(t, c.url, events.KeyKVKey(h), `{"key_id":"key_1","account_id":"acct_9","state":"active"}`)
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
	if _, err := rawBucket(t, c.url).Get(context.Background(), events.TombstoneKVKey(h)); err == nil {
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

// TestUnreadableKeyRecord: a record that holds a key by mistake is
// described without its value, changes other than delete and a forced put
// are refused, and each of those works.
func TestUnreadableKeyRecord(t *testing.T) {
	c := newCLI(t)
	h := authz.APIKey(testKey).Hash()
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1") // creates the bucket
	bad := `{"key_id":"` + testKey + `","account_id":"a","state":"active"}`
	rev := rawPut(t, c.url, events.KeyKVKey(h), bad)

	out, err := c.run("", "key", "get", "--hash", h.String())
	if err == nil || !strings.Contains(err.Error(), "key get: the key's record is unreadable (key_id: want") ||
		!strings.Contains(err.Error(), "key delete removes it") || !strings.Contains(err.Error(), "--force-overwrite") {
		t.Errorf("key get of an unreadable record = %v", err)
	}
	var raw rawOut
	if jerr := json.Unmarshal([]byte(out), &raw); jerr != nil {
		t.Fatalf("key get printed %q: %v", out, jerr)
	}
	if raw.KVKey != events.KeyKVKey(h) || !raw.Unreadable || raw.Revision != rev || raw.SizeBytes != len(bad) ||
		time.Since(raw.Created) > time.Minute || !strings.HasPrefix(raw.Problem, "key_id: want") {
		t.Errorf("key get of an unreadable record printed %+v", raw)
	}
	if out, _ := c.run("", "key", "get", "--hash", h.String(), "-o", "table"); !strings.Contains(out, "KV_KEY") || !strings.Contains(out, "SIZE_BYTES") {
		t.Errorf("key get -o table of an unreadable record = %q", out)
	}
	before := lastSeq(t, c.url)
	for _, args := range [][]string{
		{"key", "put", "--hash", h.String(), "--account", "a"},
		{"key", "suspend", "--hash", h.String()},
		{"key", "revoke", "--hash", h.String()},
	} {
		if _, err := c.run("", args...); err == nil || !strings.Contains(err.Error(), "unreadable") {
			t.Errorf("footstepctl %v = %v; want an unreadable refusal", args, err)
		}
	}
	if after := lastSeq(t, c.url); after != before {
		t.Errorf("refused changes wrote: last sequence %d -> %d", before, after)
	}
	put := decodeKeyOut(t, c.ok("", "key", "put", "--hash", h.String(), "--account", "a", "--id", "key_1", "--force-overwrite"))
	if put.State != "active" || put.KeyID != "key_1" || put.Revision <= rev {
		t.Errorf("key put --force-overwrite = %+v", put)
	}
	if got := decodeKeyOut(t, c.ok("", "key", "get", "--hash", h.String())); got != put {
		t.Errorf("key get after the overwrite = %+v; want %+v", got, put)
	}
	rawPut(t, c.url, events.KeyKVKey(h), "not json")
	c.ok("", "key", "delete", "--hash", h.String())
	if _, err := c.run("", "key", "get", "--hash", h.String()); err == nil || err.Error() != "key get: key not found" {
		t.Errorf("key get after deleting an unreadable record = %v", err)
	}
}

// TestForceOverwriteKeepsRevocations: --force-overwrite does not replace
// the unreadable record of a key with a tombstone, nor a readable revoked
// one.
func TestForceOverwriteKeepsRevocations(t *testing.T) {
	c := newCLI(t)
	h := authz.APIKey(testKey).Hash()
	c.ok("", "key", "put", "--hash", h.String(), "--account", "a")
	c.ok("", "key", "revoke", "--hash", h.String())
	args := []string{"key", "put", "--hash", h.String(), "--account", "a", "--force-overwrite"}
	if _, err := c.run("", args...); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("forced put of a revoked key = %v; want a revoked refusal", err)
	}
	rawPut(t, c.url, events.KeyKVKey(h), `{"state":"active"}`)
	if _, err := c.run("", args...); err == nil || !strings.Contains(err.Error(), "tombstone") {
		t.Errorf("forced put over a tombstoned unreadable record = %v; want a refusal", err)
	}
	out, err := c.run("", "key", "get", "--hash", h.String())
	if err == nil || !strings.Contains(out, `"tombstone":true`) {
		t.Errorf("key get = %q, %v; want the unreadable record with its tombstone", out, err)
	}
}

func TestUnreadableAccountRecord(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1")
	bad := `{"balance":"` + testKey + `"}`
	rev := rawPut(t, c.url, events.AccountKVKey("a"), bad)
	out, err := c.run("", "account", "get", "--account", "a")
	if err == nil || !strings.Contains(err.Error(), "account get: the account's record is unreadable") {
		t.Errorf("account get of an unreadable record = %v", err)
	}
	var raw rawOut
	if jerr := json.Unmarshal([]byte(out), &raw); jerr != nil || raw.KVKey != "account.a" || raw.Revision != rev || raw.SizeBytes != len(bad) {
		t.Errorf("account get printed %q (%v)", out, jerr)
	}
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "2")
	if out := c.ok("", "account", "get", "--account", "a"); !strings.Contains(out, `"balance":"2"`) {
		t.Errorf("account get after set-balance = %q", out)
	}
}
