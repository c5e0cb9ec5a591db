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
	_, _, err := runAll(t, noEnv, "", "--nats-url", "nats://127.0.0.1:1", "account", "get", "--account", "a")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("run against nothing = %v after %s; want a quick error", err, time.Since(start))
	}
}

func TestHelp(t *testing.T) {
	if out, _, err := runAll(t, noEnv, "", "-h"); err != nil || !strings.Contains(out, "footstepctl key put --key -") {
		t.Errorf("-h = %v, %q", err, out)
	}
}
