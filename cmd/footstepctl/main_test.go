package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
	stdout, stderr, err := runAll(c.t, c.getenv, stdin, args...)
	out := stdout + stderr
	if err != nil {
		out += err.Error()
	}
	if strings.Contains(out, testKey) {
		c.t.Fatalf("footstepctl %v printed the plaintext key: %s", args, out)
	}
	return stdout, err
}

func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("footstepctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
}

func decodeKeyOut(t *testing.T, out string) keyOut {
	t.Helper()
	var k keyOut
	decodeJSON(t, out, &k)
	return k
}

// rawConn connects to url as a NATS client beside footstepctl, until the
// test ends.
func rawConn(t *testing.T, url string) *events.Conn {
	t.Helper()
	conn, err := events.Connect(context.Background(), events.ConnConfig{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// rawBucket opens the bucket as a NATS client writing around footstepctl would.
func rawBucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	kv, err := rawConn(t, url).JetStream().KeyValue(context.Background(), events.DefaultBucket)
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

// lastSeq is the last sequence of the bucket's stream: it moves with every
// write.
func lastSeq(t *testing.T, url string) uint64 {
	t.Helper()
	st, err := rawBucket(t, url).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}
