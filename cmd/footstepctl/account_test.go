package main

import (
	"strings"
	"testing"

	"github.com/footstep/authz/events"
)

func TestAccountCommands(t *testing.T) {
	c := newCLI(t)
	c.ok("", "account", "set-balance", "--account", "acct_9", "--balance", "12.50")
	var got accountOut
	decodeJSON(t, c.ok("", "account", "get", "--account", "acct_9"), &got)
	if got.AccountID != "acct_9" || got.Balance != "12.50" || got.Revision == 0 {
		t.Errorf("account get = %+v", got)
	}
	c.ok("", "--bucket", "footstep-keys", "account", "set-balance", "--account", "acct_9", "--balance", "-3")
	if _, err := c.run("", "account", "get", "--account", "nobody"); err == nil || err.Error() != "account get: account not found" {
		t.Errorf("account get nobody = %v", err)
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
	decodeJSON(t, out, &raw)
	if raw.KVKey != "account.a" || raw.Revision != rev || raw.SizeBytes != len(bad) {
		t.Errorf("account get printed %q", out)
	}
	c.ok("", "account", "set-balance", "--account", "a", "--balance", "2")
	if out := c.ok("", "account", "get", "--account", "a"); !strings.Contains(out, `"balance":"2"`) {
		t.Errorf("account get after set-balance = %q", out)
	}
}
