package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestUsageTrackingFlag: usage tracking is on by default and turned off by
// the flag or its environment variable.
func TestUsageTrackingFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, nil, true},
		{"flag", []string{"--usage-tracking=false"}, nil, false},
		{"env", nil, map[string]string{"FOOTSTEP_USAGE_TRACKING": "false"}, false},
		{"flag wins", []string{"--usage-tracking=true"}, map[string]string{"FOOTSTEP_USAGE_TRACKING": "false"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil || c.UsageTracking != tt.want {
				t.Fatalf("parseConfig(%v, %v): usage tracking %v, %v; want %v", tt.args, tt.env, c != nil && c.UsageTracking, err, tt.want)
			}
		})
	}
	if _, err := parseConfig(nil, func(k string) string {
		return map[string]string{"FOOTSTEP_USAGE_TRACKING": "maybe"}[k]
	}, io.Discard); err == nil {
		t.Error("FOOTSTEP_USAGE_TRACKING=maybe: accepted; want an error")
	}
}

// TestUsageIntervalFlag: the interval defaults to a minute, is set by the
// flag or its environment variable, and is refused outside 1s to 24h.
func TestUsageIntervalFlag(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
	}{
		{"default", nil, nil, time.Minute},
		{"flag", []string{"--usage-interval", "5m"}, nil, 5 * time.Minute},
		{"env", nil, map[string]string{"FOOTSTEP_USAGE_INTERVAL": "30s"}, 30 * time.Second},
	}
	for _, tt := range tests {
		c, err := parseConfig(tt.args, env(tt.env), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		} else if c.UsageInterval != tt.want {
			t.Errorf("%s: usage interval %s; want %s", tt.name, c.UsageInterval, tt.want)
		}
	}
	for _, bad := range []string{"0s", "500ms", "25h", "-1m"} {
		_, err := parseConfig([]string{"--usage-interval", bad}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--usage-interval") {
			t.Errorf("--usage-interval %s: %v; want an error naming the flag", bad, err)
		}
	}
}
