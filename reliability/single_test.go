package reliability

import (
	"testing"

	"github.com/footstep/authz/events"
)

// single is one embedded nats-server that a test can stop and restart on the
// same port and store.
type single struct {
	tb   testing.TB
	cfg  events.EmbeddedConfig
	srv  *events.Embedded
	addr string
}

func startSingle(tb testing.TB, cfg events.EmbeddedConfig) *single {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:-1"
	}
	s := &single{tb: tb, cfg: cfg}
	s.start()
	tb.Cleanup(s.stop)
	return s
}

func (s *single) start() {
	s.tb.Helper()
	srv, err := events.StartEmbedded(s.cfg)
	if err != nil {
		s.tb.Fatalf("StartEmbedded: %v", err)
	}
	s.srv = srv
	s.cfg.Addr = srv.Addr() // restart where it was
}

func (s *single) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
}

func (s *single) url() string { return "nats://" + s.cfg.Addr }
