package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

func hashOf(key string) string { return authz.APIKey(key).Hash().String() }

// importFile writes lines to a file named keys.jsonl in a temporary directory.
func importFile(t *testing.T, lines ...string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "keys.jsonl")
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestImportExportRoundTrip(t *testing.T) {
	c := newCLI(t)
	h1, h2, h3 := hashOf("sk_live_import_1"), hashOf("sk_live_import_2"), hashOf("sk_live_import_3")
	lines := []string{
		`{"type":"key","key_hash":"` + h1 + `","key_id":"key_1","account_id":"acct_1","state":"active"}`,
		`{"type":"account","account_id":"acct_1","balance":"12.50"}`,
		``,
		`{"type":"key","key_hash":"` + h2 + `","key_id":"key_2","account_id":"acct_1","state":"suspended"}`,
		`{"type":"key","key_hash":"` + h3 + `","key_id":"key_3","account_id":"acct_2","state":"revoked"}`,
		`{"type":"account","account_id":"acct_2","balance":"-3"}`,
	}
	file := importFile(t, lines...)
	out := c.ok("", "import", "--file", file)
	if want := "keys: 3 created, 0 updated, 0 unchanged; accounts: 2 set, 0 unchanged; 0 refused"; !strings.Contains(out, want) {
		t.Errorf("first import printed %q; want %q", out, want)
	}
	if got := decodeKeyOut(t, c.ok("", "key", "get", "--hash", h2)); got.State != "suspended" || got.KeyID != "key_2" {
		t.Errorf("imported key_2 = %+v", got)
	}
	out = c.ok("", "import", "--file", file)
	if want := "keys: 0 created, 0 updated, 3 unchanged; accounts: 0 set, 2 unchanged; 0 refused"; !strings.Contains(out, want) {
		t.Errorf("second import printed %q; want %q (idempotent)", out, want)
	}

	exported := c.ok("", "export")
	want := exportOrder(lines)
	if exported != want {
		t.Errorf("export =\n%s\nwant\n%s", exported, want)
	}
	outFile := filepath.Join(t.TempDir(), "out.jsonl")
	c.ok("", "export", "--file", outFile)
	if b, _ := os.ReadFile(outFile); string(b) != want {
		t.Errorf("export --file wrote\n%s\nwant\n%s", b, want)
	}
	// What export writes, import reads back as unchanged.
	if out := c.ok("", "import", "--file", outFile); !strings.Contains(out, "3 unchanged") {
		t.Errorf("import of the export printed %q", out)
	}
}

// exportOrder returns the non-blank lines sorted as export writes them:
// keys by hash, then accounts by id.
func exportOrder(lines []string) string {
	var keys, accounts []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, `{"type":"key"`):
			keys = append(keys, l)
		case l != "":
			accounts = append(accounts, l)
		}
	}
	sortByField := func(ls []string, field string) {
		val := func(l string) string { _, v, _ := strings.Cut(l, `"`+field+`":"`); return v }
		slices.SortFunc(ls, func(a, b string) int { return strings.Compare(val(a), val(b)) })
	}
	sortByField(keys, "key_hash")
	sortByField(accounts, "account_id")
	return strings.Join(append(keys, accounts...), "\n") + "\n"
}

func TestImportBadLinesWriteNothing(t *testing.T) {
	c := newCLI(t)
	h := hashOf("sk_live_bad_1")
	file := importFile(t,
		`{"type":"key","key_hash":"`+h+`","key_id":"key_ok","account_id":"acct_1","state":"active"}`,
		`{"type":"account","account_id":"acct_1","balance":"1"}`,
		`{"type":"key","key_hash":"`+h+`","key_id":"key_ok","account_id":"acct_1","state":"deleted"}`,
		`{"type":"key","key_hash":"`+testKey+`","key_id":"key_x","account_id":"acct_1","state":"active"}`,
		`not json `+testKey,
		`{"type":"account","account_id":"acct_1","balance":"12,50"}`,
		`{"type":"account","account_id":"acct_1","balance":"1","colour":"red"}`,
		`{"type":"user","account_id":"acct_1"}`,
	)
	_, err := c.run("", "import", "--file", file)
	if err == nil {
		t.Fatal("import of a file with bad lines succeeded")
	}
	for _, want := range []string{"6 bad lines; nothing was written", "keys.jsonl:3: bad record: state", "keys.jsonl:4: key_hash",
		"keys.jsonl:5: not a JSON object", "keys.jsonl:6: balance", `keys.jsonl:7: not a JSON object of the import format: unknown field (allowed:`, "keys.jsonl:8: type"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "keys.jsonl:1:") || strings.Contains(err.Error(), "keys.jsonl:2:") {
		t.Errorf("error %q names a good line", err)
	}
	if _, err := c.run("", "key", "get", "--hash", h); err == nil {
		t.Error("a line of a refused file was written")
	}
}

func TestImportRefusesRevivingAndResumes(t *testing.T) {
	c := newCLI(t)
	c.ok("", "key", "put", "--key", testKey, "--account", "acct_1", "--id", "key_rev")
	c.ok("", "key", "revoke", "--key", testKey)
	h2, h3 := hashOf("sk_live_resume_2"), hashOf("sk_live_resume_3")
	file := importFile(t,
		`{"type":"key","key_hash":"`+hashOf(testKey)+`","key_id":"key_rev","account_id":"acct_1","state":"active"}`,
		`{"type":"key","key_hash":"`+h2+`","key_id":"key_2","account_id":"acct_1","state":"active"}`,
		`{"type":"key","key_hash":"`+h3+`","key_id":"key_3","account_id":"acct_1","state":"active"}`,
	)
	out, err := c.run("", "import", "--file", file, "--start-line", "3")
	if err != nil || !strings.Contains(out, "1 created") {
		t.Fatalf("import --start-line 3 = %q, %v; want one key created", out, err)
	}
	if _, err := c.run("", "key", "get", "--hash", h2); err == nil {
		t.Error("--start-line 3 wrote line 2")
	}
	out, err = c.run("", "import", "--file", file)
	if err == nil || !strings.Contains(err.Error(), "keys.jsonl:1: the key is revoked in the bucket") {
		t.Errorf("import reviving a revoked key = %v; want line 1 refused", err)
	}
	if !strings.Contains(out, "keys: 1 created, 0 updated, 1 unchanged") || !strings.Contains(out, "1 refused") {
		t.Errorf("summary = %q; want line 2 created, line 3 unchanged, line 1 refused", out)
	}
	if got := decodeKeyOut(t, c.ok("", "key", "get", "--key", testKey)); got.State != "revoked" {
		t.Errorf("revoked key after import = %+v; want still revoked", got)
	}
}

// TestImportExportExpiry: expires_at goes through import, key get and
// export unchanged, and a bad one is refused by line.
func TestImportExportExpiry(t *testing.T) {
	c := newCLI(t)
	h := hashOf("sk_live_expiring")
	line := `{"type":"key","key_hash":"` + h + `","key_id":"key_e","account_id":"acct_1","state":"active","expires_at":"2099-12-31T00:00:00Z"}`
	c.ok("", "import", "--file", importFile(t, line))
	if got := decodeKeyOut(t, c.ok("", "key", "get", "--hash", h)); got.ExpiresAt != "2099-12-31T00:00:00Z" {
		t.Errorf("key get of an imported expiring key = %+v", got)
	}
	if out := c.ok("", "export"); out != line+"\n" {
		t.Errorf("export = %q; want %q", out, line)
	}
	if out := c.ok("", "import", "--file", importFile(t, line)); !strings.Contains(out, "1 unchanged") {
		t.Errorf("second import = %q; want the key unchanged", out)
	}
	bad := strings.Replace(line, "2099-12-31T00:00:00Z", "tomorrow", 1)
	if _, err := c.run("", "import", "--file", importFile(t, bad)); err == nil || !strings.Contains(err.Error(), "keys.jsonl:1: expires_at: want") {
		t.Errorf("import of a bad expires_at = %v", err)
	}
}
