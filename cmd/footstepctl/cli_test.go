package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// runAll runs footstepctl and returns stdout, stderr and the error.
func runAll(t *testing.T, getenv func(string) string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr, getenv)
	return stdout.String(), stderr.String(), err
}

func noEnv(string) string { return "" }

// commandPaths lists the path of every visible command of the tree.
func commandPaths() [][]string {
	root := newRoot(&cmdEnv{g: &globals{}, stdout: io.Discard, stderr: io.Discard, getenv: noEnv})
	root.InitDefaultHelpCmd()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if !sub.Hidden {
				walk(sub, append(slices.Clone(path), sub.Name()))
			}
		}
	}
	walk(root, nil)
	return paths
}

func TestHelpOnEveryCommand(t *testing.T) {
	paths := commandPaths()
	for _, want := range []string{"key put", "key get", "key suspend", "key reactivate", "key revoke", "key delete",
		"account set-balance", "account get", "watch", "import", "export", "completion", "help"} {
		if !slices.ContainsFunc(paths, func(p []string) bool { return strings.Join(p, " ") == want }) {
			t.Errorf("no command %q in the tree %v", want, paths)
		}
	}
	for _, path := range paths {
		for _, args := range [][]string{append(slices.Clone(path), "--help"), append([]string{"help"}, path...)} {
			out, _, err := runAll(t, noEnv, "", args...)
			if err != nil {
				t.Errorf("footstepctl %v: %v; want help and exit 0", args, err)
				continue
			}
			for _, want := range []string{"Usage:", "Examples:", "  footstepctl ", "Exit status:"} {
				if !strings.Contains(out, want) {
					t.Errorf("footstepctl %v printed no %q:\n%s", args, want, out)
				}
			}
		}
	}
}

func TestBareGroupsFail(t *testing.T) {
	for _, args := range [][]string{{}, {"key"}, {"account"}} {
		out, stderr, err := runAll(t, noEnv, "", args...)
		if err == nil || !strings.Contains(err.Error(), "missing command") || out != "" || !strings.Contains(stderr, "Usage:") {
			t.Errorf("footstepctl %v = %q, %v, stderr %q; want the usage on stderr and a missing command error", args, out, err, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	defer func(v string) { buildVersion = v }(buildVersion)
	buildVersion = "v1.2.3-test"
	for _, flag := range []string{"--version", "-v"} {
		out, _, err := runAll(t, noEnv, "", flag)
		if err != nil || out != "footstepctl v1.2.3-test\n" {
			t.Errorf("footstepctl %s = %q, %v; want footstepctl v1.2.3-test", flag, out, err)
		}
	}
	buildVersion = ""
	if out, _, err := runAll(t, noEnv, "", "--version"); err != nil || !strings.HasPrefix(out, "footstepctl ") || len(out) < len("footstepctl x\n") {
		t.Errorf("footstepctl --version without a build version = %q, %v; want the module version", out, err)
	}
}

func TestOutputFormats(t *testing.T) {
	c := newCLI(t)
	h := hashOf(testKey)
	c.ok(testKey+"\n", "key", "put", "--key", "-", "--account", "acct_9", "--id", "key_9")
	c.ok("", "account", "set-balance", "--account", "acct_9", "--balance", "12.50")
	want := decodeKeyOut(t, c.ok("", "key", "get", "--hash", h, "-o", "json"))
	if want.KeyID != "key_9" || want.State != "active" {
		t.Fatalf("key get -o json = %+v", want)
	}
	var got keyOut
	if err := yaml.Unmarshal([]byte(c.ok("", "key", "get", "--hash", h, "-o", "yaml")), &got); err != nil || got != want {
		t.Errorf("key get -o yaml = %+v, %v; want %+v", got, err, want)
	}
	table := c.ok("", "key", "get", "--hash", h, "--output", "table")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "KEY_HASH") || !strings.HasPrefix(lines[1], h) || !strings.Contains(lines[1], "key_9") {
		t.Errorf("key get -o table =\n%s", table)
	}
	var acct accountOut
	if err := yaml.Unmarshal([]byte(c.ok("", "account", "get", "--account", "acct_9", "-o", "yaml")), &acct); err != nil || acct.Balance != "12.50" {
		t.Errorf("account get -o yaml = %+v, %v", acct, err)
	}
	if out := c.ok("", "account", "get", "--account", "acct_9", "-o", "table"); !strings.Contains(out, "ACCOUNT_ID") || !strings.Contains(out, "12.50") {
		t.Errorf("account get -o table = %q", out)
	}
	if out := c.ok("", "key", "suspend", "--hash", h, "-o", "yaml"); !strings.Contains(out, "op: suspend\n") {
		t.Errorf("key suspend -o yaml = %q", out)
	}
	file := importFile(t, `{"type":"account","account_id":"acct_9","balance":"12.50"}`)
	var sum importSummary
	if err := json.Unmarshal([]byte(c.ok("", "import", "--file", file, "-o", "json")), &sum); err != nil || sum.AccountsUnchanged != 1 || sum.Lines != 1 {
		t.Errorf("import -o json = %+v, %v", sum, err)
	}
	if _, err := c.run("", "key", "get", "--hash", h, "-o", "xml"); err == nil || err.Error() != "key get: --output: want json, yaml or table" {
		t.Errorf("-o xml = %v", err)
	}
	if _, err := c.run("", "export", "-o", "json"); err == nil {
		t.Error("export -o json without --file succeeded; the records are JSON Lines")
	}
}

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

func TestUnknownCommandSuggests(t *testing.T) {
	_, _, err := runAll(t, noEnv, "", "acount")
	if err == nil || !strings.Contains(err.Error(), "did you mean account?") {
		t.Errorf("footstepctl acount = %v; want a suggestion", err)
	}
	_, _, err = runAll(t, noEnv, "", "key", "put", "--acount", "a")
	if err == nil || !strings.Contains(err.Error(), "did you mean --account?") || strings.Contains(err.Error(), "--acount") {
		t.Errorf("key put --acount = %v; want a suggestion, without the name typed", err)
	}
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

// TestUnreadableKeyRecord: a record that holds a key by mistake is
// described without its value, changes other than delete and a forced put
// are refused, and each of those works.
func TestUnreadableKeyRecord(t *testing.T) {
	c := newCLI(t)
	h := authz.APIKey(testKey).Hash()
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "1") // creates the bucket
	bad := `{"key_id":"` + testKey + `","account_id":"a","state":"active"}`
	rev := rawPut(t, c.url, events.KeySubject(h), bad)

	out, err := c.run("", "key", "get", "--hash", h.String())
	if err == nil || !strings.Contains(err.Error(), "key get: the key's record is unreadable (key_id: want") ||
		!strings.Contains(err.Error(), "key delete removes it") || !strings.Contains(err.Error(), "--force-overwrite") {
		t.Errorf("key get of an unreadable record = %v", err)
	}
	var raw rawOut
	if jerr := json.Unmarshal([]byte(out), &raw); jerr != nil {
		t.Fatalf("key get printed %q: %v", out, jerr)
	}
	if raw.KVKey != events.KeySubject(h) || !raw.Unreadable || raw.Revision != rev || raw.SizeBytes != len(bad) ||
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
	rawPut(t, c.url, events.KeySubject(h), "not json")
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
	rawPut(t, c.url, events.KeySubject(h), `{"state":"active"}`)
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
	rev := rawPut(t, c.url, events.AccountSubject("a"), bad)
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

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := runAll(t, noEnv, "", "completion", shell)
		if err != nil || !strings.Contains(out, "footstepctl") || len(out) < 1000 {
			t.Errorf("completion %s = %d bytes, %v", shell, len(out), err)
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if _, _, err := runAll(t, noEnv, "", args...); err == nil || err.Error() != "completion: want one shell: bash, zsh, fish or powershell" {
			t.Errorf("footstepctl %v = %v", args, err)
		}
	}
	out, _, err := runAll(t, noEnv, "", "__complete", "key", "get", "-o", "")
	if err != nil || !strings.Contains(out, "json\nyaml\ntable\n") {
		t.Errorf("completion of -o = %q, %v", out, err)
	}
}
