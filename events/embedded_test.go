package events_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/footstep/authz/events"
)

// TestEmbeddedAddrInUse: a taken address is named in the error at once,
// instead of a wait for the ready timeout.
func TestEmbeddedAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	_, err = events.StartEmbedded(events.EmbeddedConfig{Addr: l.Addr().String(), Dir: t.TempDir(), ReadyTimeout: 10 * time.Second})
	if !errors.Is(err, events.ErrAddrInUse) {
		t.Fatalf("StartEmbedded on a taken address: %v; want ErrAddrInUse", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the error took %s; want it at once", took)
	}
}
