package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/footstep/authz/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

const testKey = "sk_live_cliTestKey_0123"

// cli runs footstepctl in process against one embedded server.
type cli struct {
	t   *testing.T
	url string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, url: testkit.StartNATS(t).URL()}
}

func (c *cli) getenv(name string) string {
	if name == "NATS_URL" {
		return c.url
	}
	return ""
}

// run runs one command and checks that the plaintext key never shows.
func (c *cli) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr, c.getenv)
	out := stdout.String() + stderr.String()
	if err != nil {
		out += err.Error()
	}
	if strings.Contains(out, testKey) {
		c.t.Fatalf("footstepctl %v printed the plaintext key: %s", args, out)
	}
	return stdout.String(), err
}

func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("footstepctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func decodeKeyOut(t *testing.T, out string) keyOut {
	t.Helper()
	var k keyOut
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return k
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

func TestAccountCommands(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "acct_9", "--balance", "12.50")
	var got accountOut
	if err := json.Unmarshal([]byte(c.ok("", "account", "get", "--account", "acct_9")), &got); err != nil {
		t.Fatal(err)
	}
	if got.AccountID != "acct_9" || got.Balance != "12.50" || got.Revision == 0 {
		t.Errorf("account get = %+v", got)
	}
	c.ok("", "--bucket", "footstep-keys", "account", "set-balance", "--account", "acct_9", "--balance", "-3")
	if _, err := c.run("", "account", "get", "--account", "nobody"); err == nil || err.Error() != "account get: account not found" {
		t.Errorf("account get nobody = %v", err)
	}
}

// TestBadInputWritesNothing checks each refusal and that the bucket's stream
// is unchanged by all of them.
func TestBadInputWritesNothing(t *testing.T) {
	c := newCLI(t)
	c.ok("", "key", "put", "--key", testKey, "--account", "a")
	c.ok("", "key", "revoke", "--key", testKey)
	before := lastSeq(t, c.url)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"key"},
		{"key", "rename", "--key", testKey},
		{"key", "put", "--key", testKey},
		{"key", "put", "--account", "a"},
		{"key", "put", "--key", "sk_live_bad key", "--account", "a"},
		{"key", "put", "--key", "pk_live_abc", "--account", "a"},
		{"key", "put", "--key", "sk_live_new", "--account", "a b"},
		{"key", "put", "--key", "sk_live_new", "--account", "a", "--id", "key.1"},
		{"key", "put", "--key", "sk_live_new", "--account", "a", "--state", "revoked"},
		{"key", "put", "--key", testKey, "--account", "a"},
		{"key", "reactivate", "--key", testKey},
		{"key", "suspend", "--key", testKey, "--hash", strings.Repeat("a", 64)},
		{"key", "suspend", "--hash", strings.Repeat("A", 64)},
		{"key", "suspend", "--hash", "abc"},
		{"key", "suspend", "--key", "sk_live_unknown"},
		{"key", "get", "--key", "sk_live_unknown"},
		{"key", "get", "--key", testKey, "extra"},
		{"account", "set-balance", "--account", "a", "--balance", "1e3"},
		{"account", "set-balance", "--account", "a"},
		{"account", "set-balance", "--balance", "1"},
		{"account", "get"},
		{"--bucket", "bad.name", "account", "set-balance", "--account", "a", "--balance", "1"},
		{"key", "put", "--key", testKey, "--account", "a", "--nope"},
	} {
		_, err := c.run("", args...)
		if err == nil {
			t.Errorf("footstepctl %v succeeded; want an error", args)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("footstepctl %v: error spans lines: %q", args, err)
		}
	}
	if _, err := c.run("", "key", "get", "--key", "-"); err == nil {
		t.Errorf("key get --key - with empty stdin succeeded")
	}
	if after := lastSeq(t, c.url); after != before {
		t.Errorf("stream last sequence %d -> %d: a refused command wrote", before, after)
	}
}

func TestUnreachableNATS(t *testing.T) {
	start := time.Now()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--nats-url", "nats://127.0.0.1:1", "account", "get", "--account", "a"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("run against nothing = %v after %s; want a quick error", err, time.Since(start))
	}
}

func TestHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, nil, &stdout, &bytes.Buffer{}, func(string) string { return "" }); err != nil || !strings.Contains(stdout.String(), "footstepctl key put --key -") {
		t.Errorf("-h = %v, %q", err, stdout.String())
	}
}

func TestWatch(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1")
	out := startWatch(t, c)
	waitFor(t, out, `"key":"account.a"`)
	c.ok("", "key", "put", "--key", testKey, "--account", "a")
	c.ok("", "key", "delete", "--key", testKey)
	h := authz.APIKey(testKey).Hash().String()
	waitFor(t, out, `{"op":"DEL","key":"key.`+h+`"`)
	want := `{"op":"PUT","key":"key.` + h + `","revision":2,"value":{"key_id":"key_` + h[:12] + `","account_id":"a","state":"active"}}`
	if !strings.Contains(out.String(), want) {
		t.Errorf("watch output %s; want a line %s", out.String(), want)
	}
}

// waitFor waits until the watch has written s, and shows what it wrote
// when it does not.
func waitFor(t *testing.T, out *testkit.LogBuffer, s string) {
	t.Helper()
	if !testkit.Poll(5*time.Second, func() bool { return strings.Contains(out.String(), s) }) {
		t.Fatalf("watch output %q lacks %s", out.String(), s)
	}
}

func lastSeq(t *testing.T, url string) uint64 {
	t.Helper()
	ctx := context.Background()
	conn, err := events.Connect(ctx, events.ConnConfig{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kv, err := conn.JetStream().KeyValue(ctx, events.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}
