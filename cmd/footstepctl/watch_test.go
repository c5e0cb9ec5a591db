package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
)

// startWatch runs footstepctl watch with args until the test ends.
func startWatch(t *testing.T, c *cli, args ...string) *testkit.LogBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.LogBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"watch"}, args...), nil, out, out, c.getenv) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch %v: %v", args, err)
		}
	})
	return out
}

// waitFor waits until the watch has written s, and shows what it wrote
// when it does not.
func waitFor(t *testing.T, out *testkit.LogBuffer, s string) {
	t.Helper()
	if !testkit.Poll(5*time.Second, func() bool { return strings.Contains(out.String(), s) }) {
		t.Fatalf("watch output %q lacks %s", out.String(), s)
	}
}

func TestWatch(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1")
	out := startWatch(t, c)
	waitFor(t, out, `"key":"account.a"`)
	c.ok("", "key", "put", "--key", testKey, "--account", "a")
	c.ok("", "key", "delete", "--key", testKey)
	h := hashOf(testKey)
	waitFor(t, out, `{"op":"DEL","key":"key.`+h+`"`)
	want := `{"op":"PUT","key":"key.` + h + `","revision":2,"value":{"key_id":"key_` + h[:12] + `","account_id":"a","state":"active"}}`
	if !strings.Contains(out.String(), want) {
		t.Errorf("watch output %s; want a line %s", out.String(), want)
	}
}

func TestWatchReplayMarker(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1")
	c.ok("", "account", "set-balance", "--account", "b", "--balance", "2")
	out := startWatch(t, c)
	marker := `{"type":"replay_done","entries":2}`
	waitFor(t, out, marker)
	c.ok("", "account", "set-balance", "--account", "c", "--balance", "3")
	waitFor(t, out, `"key":"account.c"`)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || lines[2] != marker || !strings.Contains(lines[3], `"key":"account.c"`) {
		t.Errorf("watch printed\n%s\nwant two records, the marker, then the change", out.String())
	}
}

func TestWatchUpdatesOnly(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "old", "--balance", "1")
	out := startWatch(t, c, "--updates-only")
	waitFor(t, out, `{"type":"replay_done","entries":0}`)
	c.ok("", "account", "set-balance", "--account", "new", "--balance", "3")
	waitFor(t, out, `"key":"account.new"`)
	if strings.Contains(out.String(), "account.old") {
		t.Errorf("watch --updates-only printed a record written before it started:\n%s", out.String())
	}
}

func TestWatchTableAndYAML(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1")
	table := startWatch(t, c, "-o", "table")
	yml := startWatch(t, c, "-o", "yaml")
	waitFor(t, table, "# replay_done: 1 entries; live changes follow")
	waitFor(t, yml, "type: replay_done")
	if s := table.String(); !strings.HasPrefix(s, "OP") || !strings.Contains(s, "account.a") {
		t.Errorf("watch -o table =\n%s", s)
	}
	if s := yml.String(); !strings.Contains(s, "---\nkey: account.a\nop: PUT\n") {
		t.Errorf("watch -o yaml =\n%s", s)
	}
}

// TestWatchHidesUnreadableValues: a value that does not decode, and a KV
// key outside the schema, may hold a key: watch says why instead.
func TestWatchHidesUnreadableValues(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1")
	rawPut(t, c.url, events.AccountKVKey("a"), `{"balance":"`+testKey+`"}`)
	rawPut(t, c.url, "key."+testKey, `{"key_id":"k","account_id":"a","state":"active"}`)
	out := startWatch(t, c)
	waitFor(t, out, "replay_done")
	s := out.String()
	if strings.Contains(s, "sk_live") || strings.Contains(s, "cliTestKey") {
		t.Errorf("watch printed the key:\n%s", s)
	}
	for _, want := range []string{`"key":"account.a","revision":2,"value":null,"unreadable":"balance: want`,
		`"key":"key.(23 characters not shown)"`, `"unreadable":"not a key, account or tombstone record"`} {
		if !strings.Contains(s, want) {
			t.Errorf("watch printed\n%s\nwant %s", s, want)
		}
	}
}
