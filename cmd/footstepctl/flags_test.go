package main

import (
	"io"
	"strings"
	"testing"
)

// TestConnectionFlagNames: the server's flag names, their FOOTSTEP_*
// variables, and footstepctl's former names (hidden, with one or two
// dashes) all set the same setting.
func TestConnectionFlagNames(t *testing.T) {
	pairs := []struct{ old, name string }{
		{"bucket", "kv-bucket"}, {"creds", "nats-creds"}, {"nkey", "nats-nkey"}, {"token", "nats-token"},
		{"user", "nats-user"}, {"password", "nats-password"}, {"tls-ca", "nats-tls-ca"},
		{"tls-cert", "nats-tls-cert"}, {"tls-key", "nats-tls-key"}, {"nats-url", "nats-url"},
	}
	for _, p := range pairs {
		for _, spelling := range []string{"--" + p.old, "-" + p.old, "--" + p.name} {
			e := &cmdEnv{g: &globals{}, stdout: io.Discard, stderr: io.Discard, getenv: noEnv}
			root := newRoot(e)
			root.SetArgs(longFlagsWithTwoDashes(root, []string{spelling, "value-1", "help"}))
			root.SetOut(io.Discard)
			if err := root.Execute(); err != nil {
				t.Errorf("%s: %v", spelling, err)
				continue
			}
			if got := flagValue(e.g, p.name); got != "value-1" {
				t.Errorf("%s value-1 set --%s to %q", spelling, p.name, got)
			}
		}
	}
	help, _, _ := runAll(t, noEnv, "", "--help")
	for _, p := range pairs {
		if p.old != p.name && strings.Contains(help, "--"+p.old+" ") {
			t.Errorf("help shows the former name --%s", p.old)
		}
	}
}

func flagValue(g *globals, name string) string {
	for _, f := range g.flags() {
		if f.name == name {
			return *f.dst
		}
	}
	return ""
}

// TestConnectionEnv: FOOTSTEP_NATS_URL before NATS_URL, FOOTSTEP_KV_BUCKET,
// and flags before both, against a real server.
func TestConnectionEnv(t *testing.T) {
	c := newCLI(t)
	env := map[string]string{"FOOTSTEP_NATS_URL": c.url, "NATS_URL": "nats://127.0.0.1:1", "FOOTSTEP_KV_BUCKET": "other-bucket"}
	getenv := func(k string) string { return env[k] }
	if _, _, err := runAll(t, getenv, "", "account", "set-balance", "--account", "a", "--balance", "1"); err != nil {
		t.Fatalf("with FOOTSTEP_NATS_URL and FOOTSTEP_KV_BUCKET: %v", err)
	}
	for _, args := range [][]string{
		{"--bucket", "other-bucket", "account", "get", "--account", "a"},
		{"account", "get", "--account", "a", "--kv-bucket", "other-bucket"},
		{"-bucket=other-bucket", "account", "get", "--account", "a"},
	} {
		if out, err := c.run("", args...); err != nil || !strings.Contains(out, `"balance":"1"`) {
			t.Errorf("footstepctl %v = %q, %v; want the balance written to other-bucket", args, out, err)
		}
	}
	if _, err := c.run("", "account", "get", "--account", "a"); err == nil {
		t.Error("the default bucket has the account written to other-bucket")
	}
	env["FOOTSTEP_NATS_URL"] = ""
	env["NATS_URL"] = c.url
	if out, _, err := runAll(t, getenv, "", "account", "get", "--account", "a"); err != nil || !strings.Contains(out, `"balance":"1"`) {
		t.Errorf("with NATS_URL alone = %q, %v", out, err)
	}
	env["FOOTSTEP_NATS_URL"] = "nats://127.0.0.1:1"
	if out, _, err := runAll(t, getenv, "", "--nats-url", c.url, "account", "get", "--account", "a"); err != nil || !strings.Contains(out, `"balance":"1"`) {
		t.Errorf("--nats-url over a bad FOOTSTEP_NATS_URL = %q, %v", out, err)
	}
}

func TestKeySources(t *testing.T) {
	c := newCLI(t)
	h := hashOf(testKey)
	env := func(k string) string {
		if k == "FOOTSTEP_API_KEY" {
			return testKey
		}
		return c.getenv(k)
	}
	for _, tt := range []struct {
		name   string
		getenv func(string) string
		stdin  string
		args   []string
		warn   bool
	}{
		{"argv", c.getenv, "", []string{"--key", testKey}, true},
		{"argv=", c.getenv, "", []string{"--key=" + testKey}, true},
		{"stdin", c.getenv, testKey + "\n", []string{"--key", "-"}, false},
		{"env", env, "", nil, false},
		{"hash", c.getenv, "", []string{"--hash", h}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"key", "put", "--account", "acct_1"}, tt.args...)
			out, stderr, err := runAll(t, tt.getenv, tt.stdin, args...)
			if err != nil || decodeKeyOut(t, out).KeyHash != h {
				t.Fatalf("key put %v = %q, %v", tt.args, out, err)
			}
			warned := strings.Contains(stderr, "warning") && strings.Contains(stderr, "shell history") &&
				strings.Contains(stderr, "ps output") && strings.Contains(stderr, "--key -") && strings.Contains(stderr, "FOOTSTEP_API_KEY")
			if warned != tt.warn || (!tt.warn && stderr != "") {
				t.Errorf("key put %s: stderr %q; want a warning: %v", tt.name, stderr, tt.warn)
			}
			if strings.Contains(stderr+out, testKey) {
				t.Errorf("key put %s printed the key", tt.name)
			}
		})
	}
	if _, err := c.run("", "key", "get"); err == nil || !strings.Contains(err.Error(), "FOOTSTEP_API_KEY") {
		t.Errorf("key get without a key = %v; want the ways to give one", err)
	}
}

// TestMessagesNeverQuoteKeys: whatever is typed where a command, a flag, a
// value or a field name goes, the error does not repeat it.
func TestMessagesNeverQuoteKeys(t *testing.T) {
	c := newCLI(t)
	file := importFile(t, `{"type":"account","account_id":"a","balance":"1","`+testKey+`":"x"}`)
	for _, args := range [][]string{
		{testKey},
		{"key", testKey},
		{"help", testKey},
		{"key", "get", testKey},
		{"key", "get", "--" + testKey},
		{"key", "get", "-" + testKey},
		{"key", "get", "--hash", testKey},
		{"key", "get", "-o", testKey},
		{"import", "--file", file, "--start-line", testKey},
		{"import", "--file", file},
		{"import", "--file", testKey},
		{"export", "--file", "/nonexistent-dir/" + testKey},
		{"completion", testKey},
		{"account", "get", "--account", testKey + "."},
		{"key", "put", "--key", "-", "--account", "a", "--id", testKey + "."},
	} {
		out, stderr, err := runAll(t, c.getenv, "", args...)
		if err == nil {
			t.Errorf("footstepctl %v succeeded", args)
			continue
		}
		if all := out + stderr + err.Error(); strings.Contains(all, "sk_live") || strings.Contains(all, "cliTestKey") {
			t.Errorf("footstepctl %v quoted the key: %s", args, all)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("footstepctl %v: error spans lines: %q", args, err)
		}
	}
	_, err := c.run("", "import", "--file", file)
	if err == nil || !strings.Contains(err.Error(), "keys.jsonl:1: not a JSON object of the import format: unknown field") {
		t.Errorf("import of an unknown field = %v; want the line and unknown field", err)
	}
}
