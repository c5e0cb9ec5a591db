package authz

import (
	"strings"
	"unicode/utf8"
)

// MaxClip is the most bytes of untrusted text that Clip keeps.
const MaxClip = 64

// Clip makes untrusted text fit to quote in an error or a log line: at most
// MaxClip bytes (cut on a rune boundary, marked with "..."), and anything
// from an API key prefix on replaced by a redaction, since text that came
// in where a name or an id was expected may be a key pasted by mistake.
// Every package quotes untrusted text through it.
func Clip(s string) string {
	if i := strings.Index(s, KeyPrefix); i >= 0 {
		return Clip(s[:i]) + redacted
	}
	if len(s) <= MaxClip {
		return s
	}
	cut := MaxClip
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
