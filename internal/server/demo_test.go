package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/footstep/authz/internal/testkit"
)

// TestDemoKeysRestoredAtStart: a demo key changed by hand (the active one
// revoked, the revoked one deleted) is back in its documented state at the
// next --demo start on the same store, and the printed table says so.
func TestDemoKeysRestoredAtStart(t *testing.T) {
	dir := t.TempDir()
	var out testkit.LogBuffer
	demo := func(c *Config) { c.Demo, c.EmbeddedNATSDir, c.Stdout = true, dir, &out }
	first := startServer(t, demo)
	ctx := context.Background()
	active, revoked := demoKeys[0], demoKeys[3]
	if _, err := first.publisher().Revoke(ctx, active.key.Hash()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.publisher().DeleteKey(ctx, revoked.key.Hash()); err != nil {
		t.Fatal(err)
	}
	first.stop()

	second := startServer(t, demo)
	for _, d := range []demoKey{active, revoked} {
		e, err := second.publisher().GetKey(ctx, d.key.Hash())
		if err != nil || e.Record != d.record {
			t.Errorf("demo key %s after restart: %+v, %v; want %+v", d.record.KeyID, e.Record, err, d.record)
		}
	}
	testkit.Eventually(t, 15*time.Second, "active demo key allowed", func() bool {
		resp, err := second.client.Check(ctx, testkit.KeyCheck(string(active.key)))
		return err == nil && resp.GetStatus().GetCode() == 0
	})
	if got := out.String(); strings.Count(got, "put back in these states") != 2 || !strings.Contains(got, string(active.key)) {
		t.Errorf("demo table printed:\n%s", got)
	}
}
