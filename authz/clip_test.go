package authz_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/footstep/authz/authz"
)

func TestClip(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct{ name, in, want string }{
		{"short", "bucket", "bucket"},
		{"empty", "", ""},
		{"long", long, long[:authz.MaxClip] + "..."},
		{"a key", "sk_live_abcdef", "sk_live_[REDACTED]"},
		{"a key inside", "key.sk_live_abcdef.x", "key.sk_live_[REDACTED]"},
		{"a key after long text", long + "sk_live_abc", long[:authz.MaxClip] + "...sk_live_[REDACTED]"},
		{"cut on a rune", strings.Repeat("é", 40), strings.Repeat("é", 32) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authz.Clip(tt.in); got != tt.want {
				t.Errorf("Clip(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzClip: whatever the input, the result is valid UTF-8 when the input
// is, bounded, and holds no key material after the prefix.
func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "sk_live_abc", "xsk_live_sk_live_y", strings.Repeat("é", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := authz.Clip(s)
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Clip(%q) = %q: not valid UTF-8", s, got)
		}
		if len(got) > authz.MaxClip+len("...")+len("sk_live_[REDACTED]") {
			t.Fatalf("Clip(%q) is %d bytes", s, len(got))
		}
		if i := strings.Index(got, authz.KeyPrefix); i >= 0 && got[i:] != "sk_live_[REDACTED]" {
			t.Fatalf("Clip(%q) = %q: key material after the prefix", s, got)
		}
	})
}
