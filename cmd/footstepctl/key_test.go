package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

const newTestKey = "sk_live_cliNewTestKey_4567"

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"0s", 0, true},
		{"-1h", 0, false},
		{"-1d", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"90 days", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDays(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDays(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestKeyCommands(t *testing.T) {
	c := newCLI(t)
	h := authz.APIKey(testKey).Hash().String()
	put := decodeKeyOut(t, c.ok(testKey+"\n", "key", "put", "--key", "-", "--account", "acct_9"))
	want := keyOut{KeyHash: h, KeyID: "key_" + h[:12], AccountID: "acct_9", State: "active", Revision: put.Revision}
	if put != want || put.Revision == 0 {
		t.Errorf("key put = %+v; want %+v", put, want)
	}
	if got := decodeKeyOut(t, c.ok("", "key", "get", "--hash", h)); got != want {
		t.Errorf("key get --hash = %+v; want %+v", got, want)
	}
	c.ok("", "key", "put", "--key", testKey, "--account", "acct_9", "--id", "key_123", "--state", "suspended")
	for _, op := range []string{"reactivate", "suspend", "revoke", "revoke"} {
		c.ok("", "key", op, "--key", testKey)
	}
	got := decodeKeyOut(t, c.ok("", "key", "get", "--key", testKey))
	if got.State != "revoked" || got.KeyID != "key_123" {
		t.Errorf("after revoke: %+v", got)
	}
	for _, args := range [][]string{
		{"key", "reactivate", "--key", testKey},
		{"key", "suspend", "--hash", h},
		{"key", "put", "--key", testKey, "--account", "acct_9"},
	} {
		if _, err := c.run("", args...); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("footstepctl %v = %v; want a revoked refusal", args, err)
		}
	}
	if again := decodeKeyOut(t, c.ok("", "key", "get", "--key", testKey)); again != got {
		t.Errorf("refused changes wrote: %+v; want %+v", again, got)
	}
	c.ok("", "key", "delete", "--key", testKey)
	if _, err := c.run("", "key", "get", "--key", testKey); err == nil || err.Error() != "key get: key not found" {
		t.Errorf("key get after delete = %v; want key get: key not found", err)
	}
}

func TestKeyExpire(t *testing.T) {
	c := newCLI(t)
	c.ok(testKey+"\n", "key", "put", "--key", "-", "--account", "acct_9", "--id", "key_1")
	for _, args := range [][]string{
		{"key", "expire", "--key", "-"},
		{"key", "expire", "--key", "-", "--at", "2030-01-01T00:00:00Z", "--in", "1h"},
		{"key", "expire", "--key", "-", "--at", "2030-01-01T01:00:00+01:00"},
		{"key", "expire", "--key", "-", "--at", "sk_live_pasted_by_mistake"},
		{"key", "expire", "--key", "-", "--in", "-3d"},
	} {
		_, err := c.run(testKey+"\n", args...)
		if err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "sk_live_pasted") {
			t.Errorf("footstepctl %v = %v; want a one-line error that quotes nothing", args, err)
		}
	}
	var out changeOut
	decodeJSON(t, c.ok(testKey+"\n", "key", "expire", "--key", "-", "--at", "2030-01-01T00:00:00Z"), &out)
	if out.Op != "expire" || out.ExpiresAt != "2030-01-01T00:00:00Z" || out.KeyHash != authz.APIKey(testKey).Hash().String() {
		t.Errorf("key expire = %+v", out)
	}
	before := time.Now()
	decodeJSON(t, c.ok(testKey+"\n", "key", "expire", "--key", "-", "--in", "1d"), &out)
	if at, err := time.Parse(time.RFC3339Nano, out.ExpiresAt); err != nil || at.Before(before.Add(24*time.Hour)) || at.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("key expire --in 1d = %+v, %v; want now+24h", out, err)
	}
	if got := decodeKeyOut(t, c.ok(testKey+"\n", "key", "get", "--key", "-")); got.ExpiresAt != out.ExpiresAt || got.State != "active" {
		t.Errorf("key get = %+v; want active, expires_at %s", got, out.ExpiresAt)
	}
	c.ok(testKey+"\n", "key", "expire", "--key", "-", "--in", "0s")
	var expired keyUsedOut
	decodeJSON(t, c.ok(testKey+"\n", "key", "get", "--key", "-"), &expired)
	if !expired.Expired || expired.State != "active" {
		t.Errorf("key get of an expired key = %+v; want expired true", expired)
	}
	for _, args := range [][]string{
		{"key", "reactivate", "--key", "-"},
		{"key", "expire", "--key", "-", "--in", "30d"},
		{"key", "put", "--key", "-", "--account", "acct_9", "--id", "key_1"},
	} {
		if _, err := c.run(testKey+"\n", args...); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("footstepctl %v on an expired key = %v; want refused as expired", args, err)
		}
	}
}

func TestKeyRotate(t *testing.T) {
	c := newCLI(t)
	c.ok(testKey+"\n", "key", "put", "--key", "-", "--account", "acct_9", "--id", "key_1")
	for name, tt := range map[string]struct {
		stdin string
		args  []string
	}{
		"no new id":       {testKey + "\n" + newTestKey + "\n", nil},
		"one line":        {testKey + "\n", []string{"--new-id", "key_2"}},
		"same key":        {testKey + "\n" + testKey + "\n", []string{"--new-id", "key_2"}},
		"malformed key":   {testKey + "\nnot-a-key\n", []string{"--new-id", "key_2"}},
		"bad grace":       {testKey + "\n" + newTestKey + "\n", []string{"--new-id", "key_2", "--grace", "soon"}},
		"key as argument": {"", []string{"--new-id", "key_2", newTestKey}},
	} {
		_, err := c.run(tt.stdin, append([]string{"key", "rotate"}, tt.args...)...)
		if err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), newTestKey) {
			t.Errorf("key rotate, %s = %v; want a one-line error without the key", name, err)
		}
	}
	start := time.Now()
	out := c.ok(testKey+"\n"+newTestKey+"\n", "key", "rotate", "--new-id", "key_2", "--grace", "2d")
	if strings.Contains(out, newTestKey) {
		t.Errorf("key rotate printed a key: %s", out)
	}
	var r rotateOut
	decodeJSON(t, out, &r)
	exp, err := time.Parse(time.RFC3339Nano, r.OldExpiresAt)
	if r.OldKeyID != "key_1" || r.NewKeyID != "key_2" || r.AccountID != "acct_9" || err != nil ||
		exp.Before(start.Add(48*time.Hour).Truncate(time.Second)) || exp.After(time.Now().Add(48*time.Hour)) {
		t.Errorf("key rotate = %+v; want key_1 -> key_2 on acct_9, old expiring in 2d", r)
	}
	if got := decodeKeyOut(t, c.ok(newTestKey+"\n", "key", "get", "--key", "-")); got.KeyID != "key_2" || got.AccountID != "acct_9" || got.State != "active" || got.ExpiresAt != "" {
		t.Errorf("new key = %+v", got)
	}
	if got := decodeKeyOut(t, c.ok(testKey+"\n", "key", "get", "--key", "-")); got.ExpiresAt != r.OldExpiresAt {
		t.Errorf("old key = %+v; want expires_at %s", got, r.OldExpiresAt)
	}
	if _, err := c.run(testKey+"\n"+newTestKey+"\n", "key", "rotate", "--new-id", "key_3"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("rotate to an existing key = %v; want refused", err)
	}

	// From the environment, both variables or neither.
	third := "sk_live_cliThirdTestKey_89"
	env := map[string]string{"NATS_URL": c.url, apiKeyEnv: newTestKey, newAPIKeyEnv: third}
	if err := runEnv(c, env, "key", "rotate", "--new-id", "key_3", "-o", "table"); err != nil {
		t.Errorf("key rotate from the environment: %v", err)
	}
	delete(env, newAPIKeyEnv)
	if err := runEnv(c, env, "key", "rotate", "--new-id", "key_4"); err == nil || !strings.Contains(err.Error(), newAPIKeyEnv) {
		t.Errorf("key rotate with one variable = %v; want an error naming %s", err, newAPIKeyEnv)
	}
}

// runEnv runs footstepctl with env as its whole environment.
func runEnv(c *cli, env map[string]string, args ...string) error {
	c.t.Helper()
	_, _, err := runAll(c.t, func(k string) string { return env[k] }, "", args...)
	return err
}

func TestKeyLastUsedAndList(t *testing.T) {
	c := newCLI(t)
	keys := []string{"sk_live_cliUsedRecently_1", "sk_live_cliUsedLongAgo_2", "sk_live_cliNeverUsed_3"}
	for i, k := range keys {
		c.ok(k+"\n", "key", "put", "--key", "-", "--account", "acct_9", "--id", "key_"+string(rune('a'+i)))
	}
	if out := c.ok(keys[0]+"\n", "key", "get", "--key", "-"); !strings.Contains(out, `"last_used":""`) {
		t.Errorf("key get before any usage bucket = %s; want last_used empty", out)
	}
	ukv, err := events.OpenUsageBucket(context.Background(), rawConn(t, c.url).JetStream(), events.DefaultUsageBucket, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i, last := range []time.Time{now.Add(-24 * time.Hour), now.Add(-100 * 24 * time.Hour)} {
		h := authz.APIKey(keys[i]).Hash()
		u := events.KeyUsage{KeyID: "key_x", AccountID: "acct_9", KeyHash: h.String(), FirstSeen: last, LastSeen: last, Counts: map[string]uint64{"ok": 1}}
		if err := events.StoreUsage(context.Background(), ukv, h, u); err != nil {
			t.Fatal(err)
		}
	}
	var got keyUsedOut
	decodeJSON(t, c.ok(keys[0]+"\n", "key", "get", "--key", "-"), &got)
	if want := now.Add(-24 * time.Hour).Format(time.RFC3339); got.LastUsed != want || got.KeyID != "key_a" {
		t.Errorf("key get = %+v; want last_used %s", got, want)
	}
	if out := c.ok(keys[2]+"\n", "key", "get", "--key", "-", "-o", "table"); !strings.Contains(out, "LAST_USED") || !strings.Contains(out, "never") {
		t.Errorf("key get -o table of a key never used:\n%s", out)
	}

	listIDs := func(args ...string) []string {
		var ids []string
		for line := range strings.SplitSeq(strings.TrimSpace(c.ok("", append([]string{"key", "list"}, args...)...)), "\n") {
			var k listedKey
			decodeJSON(t, line, &k)
			ids = append(ids, k.KeyID)
		}
		return ids
	}
	if ids := strings.Join(listIDs(), ","); len(ids) != len("key_a,key_b,key_c") {
		t.Errorf("key list = %s; want the three keys", ids)
	}
	ids := listIDs("--unused-for", "90d")
	if strings.Join(slices.Sorted(slices.Values(ids)), ",") != "key_b,key_c" {
		t.Errorf("key list --unused-for 90d = %v; want key_b (100 days) and key_c (never)", ids)
	}
	if out := c.ok("", "key", "list", "--unused-for", "90d", "-o", "table"); !strings.Contains(out, "never") || strings.Contains(out, "sk_live_cli") {
		t.Errorf("key list -o table:\n%s", out)
	}
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
	decodeJSON(t, out, &raw)
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
