package main

import (
	"errors"
	"log/slog"
	"strings"
)

// logLevel is the --log-level flag: debug, info, warn or error, shown and
// parsed in lower case.
type logLevel struct{ l *slog.Level }

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

func (f logLevel) Set(s string) error {
	l, ok := logLevels[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return errors.New("want debug, info, warn or error")
	}
	*f.l = l
	return nil
}

func (f logLevel) String() string {
	if f.l == nil {
		return "info"
	}
	return strings.ToLower(f.l.String())
}
