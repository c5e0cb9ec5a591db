package cli_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/footstep/authz/internal/cli"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"256MiB", 256 << 20, true}, {"1GiB", 1 << 30, true}, {"10MB", 10_000_000, true}, {" 4096 ", 4096, true},
		{"0", 0, false}, {"lots", 0, false}, {"-1MiB", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		var n int64
		err := cli.ByteSize{N: &n}.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && n != tt.want) {
			t.Errorf("ByteSize.Set(%q) = %d, %v; want %d, ok %v", tt.in, n, err, tt.want, tt.ok)
		}
	}
	n := int64(256 << 20)
	if got := (cli.ByteSize{N: &n}).String(); got != "256MiB" {
		t.Errorf("ByteSize(256MiB).String() = %q", got)
	}
}

func TestDurationAndLogLevel(t *testing.T) {
	var d time.Duration
	if err := (cli.Duration{D: &d}).Set("1m30s"); err != nil || d != 90*time.Second {
		t.Errorf("Duration.Set(1m30s) = %v, %v", d, err)
	}
	if err := (cli.Duration{D: &d}).Set("5 s"); err == nil {
		t.Error("Duration.Set(5 s) = nil error")
	}
	var l slog.Level
	if err := (cli.LogLevel{L: &l}).Set("WARN"); err != nil || l != slog.LevelWarn || (cli.LogLevel{L: &l}).String() != "warn" {
		t.Errorf("LogLevel.Set(WARN) = %v, %v", l, err)
	}
	if err := (cli.LogLevel{L: &l}).Set("loud"); err == nil {
		t.Error("LogLevel.Set(loud) = nil error")
	}
}

func TestVersion(t *testing.T) {
	if got := cli.Version("v1.2.3"); got != "v1.2.3" {
		t.Errorf("Version(v1.2.3) = %q", got)
	}
	if got := cli.Version(""); got == "" {
		t.Error("Version(\"\") is empty")
	}
}
