package cli

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// ByteSize is a flag.Value of a size in bytes, written as a number with an
// optional unit: B, KiB, MiB, GiB (powers of 1024) or kB, MB, GB (powers of
// 1000); it prints in IEC units, such as 256MiB.
type ByteSize struct{ N *int64 }

func (b ByteSize) Set(s string) error {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil || n == 0 || n > math.MaxInt64/2 {
		return errors.New("want a positive size such as 256MiB")
	}
	*b.N = int64(n)
	return nil
}

func (b ByteSize) String() string {
	if b.N == nil {
		return ""
	}
	return strings.ReplaceAll(humanize.IBytes(uint64(*b.N)), " ", "")
}

// Duration is a flag.Value of a time.Duration whose error says what is
// wanted.
type Duration struct{ D *time.Duration }

func (f Duration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 500ms, 10s or 5m")
	}
	*f.D = d
	return nil
}

func (f Duration) String() string {
	if f.D == nil {
		return "0s"
	}
	return f.D.String()
}

// LogLevel is a flag.Value of a slog level: debug, info, warn or error,
// parsed and printed in lower case.
type LogLevel struct{ L *slog.Level }

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

func (f LogLevel) Set(s string) error {
	l, ok := logLevels[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return errors.New("want debug, info, warn or error")
	}
	*f.L = l
	return nil
}

func (f LogLevel) String() string {
	if f.L == nil {
		return "info"
	}
	return strings.ToLower(f.L.String())
}
