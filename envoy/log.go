package envoy

// clipped bounds untrusted text written to logs.
func clipped(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max]
	}
	return s
}
