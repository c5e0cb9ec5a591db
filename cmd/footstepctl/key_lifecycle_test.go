package main

import (
	"context"
	"encoding/json"
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
	var out expireOut
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	return run(ctx, args, strings.NewReader(""), &out, &out, func(k string) string { return env[k] })
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
	conn, err := events.Connect(context.Background(), events.ConnConfig{URLs: []string{c.url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	ukv, err := events.OpenUsageBucket(context.Background(), conn.JetStream(), events.DefaultUsageBucket, 1)
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
	if strings.Join(sortedCopy(ids), ",") != "key_b,key_c" {
		t.Errorf("key list --unused-for 90d = %v; want key_b (100 days) and key_c (never)", ids)
	}
	if out := c.ok("", "key", "list", "--unused-for", "90d", "-o", "table"); !strings.Contains(out, "never") || strings.Contains(out, "sk_live_cli") {
		t.Errorf("key list -o table:\n%s", out)
	}
}

func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
