package server

import (
	"errors"
	"fmt"
)

// check refuses a configuration the server cannot run safely with. The
// command validates flags first with messages that name them; this guards
// callers that build a Config themselves.
func (c *Config) check() error {
	switch {
	case c.MaxStaleness < MinMaxStaleness:
		return fmt.Errorf("server: max staleness %s: want at least %s", c.MaxStaleness, MinMaxStaleness)
	case c.StalePolicy != StaleDeny && c.StalePolicy != StaleServe:
		return fmt.Errorf("server: stale policy %q: want %s or %s", c.StalePolicy, StaleDeny, StaleServe)
	case c.Mode != ModeEnforce && c.Mode != ModeShadow:
		return fmt.Errorf("server: mode %q: want %s or %s", c.Mode, ModeEnforce, ModeShadow)
	case c.ShutdownTimeout <= 0:
		return errors.New("server: shutdown timeout must be positive")
	case c.Demo && c.NATSURL != "":
		return errors.New("server: demo keys are seeded into the embedded NATS server only")
	}
	return nil
}
