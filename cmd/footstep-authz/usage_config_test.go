package main

import (
	"io"
	"testing"
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
