package authz

import "strings"

// maxUnescapes bounds how many layers of percent-encoding QueryKey peels off,
// so that "%2573k_live_..." is caught without unbounded work.
const maxUnescapes = 3

// QueryKey reports whether the query string of target (a request path with
// an optional query) carries something that looks like an API key: a
// parameter name or value that starts with sk_live_, also when
// percent-encoded or written as "Bearer sk_live_...". It returns the key when
// it is well-formed, so that its exposure can be reported.
func QueryKey(target string) (key APIKey, found bool) {
	i := strings.IndexByte(target, '?')
	if i < 0 {
		return "", false
	}
	query := target[i+1:]
	if !strings.Contains(query, KeyPrefix) && !strings.Contains(query, "%") {
		return "", false
	}
	for query != "" {
		var param string
		param, query = nextParam(query)
		name, value, _ := strings.Cut(param, "=")
		for _, part := range [2]string{name, value} {
			if k, ok := keyLike(part); ok {
				return k, true
			}
		}
	}
	return "", false
}

// nextParam splits off the first parameter of a query, at '&' or ';'.
func nextParam(query string) (param, rest string) {
	if i := strings.IndexAny(query, "&;"); i >= 0 {
		return query[:i], query[i+1:]
	}
	return query, ""
}

// keyLike reports whether one query component, once decoded, starts with
// the key prefix, and returns it as a key when it is well-formed.
func keyLike(raw string) (APIKey, bool) {
	s := raw
	for i := 0; i < maxUnescapes && strings.IndexByte(s, '%') >= 0; i++ {
		s = unescape(s)
	}
	s = strings.ReplaceAll(s, "+", " ")
	s = trimOWS(s)
	if t := bearerToken(s); t != "" {
		s = t
	}
	if !strings.HasPrefix(s, KeyPrefix) {
		return "", false
	}
	if validKey(s) {
		return APIKey(s), true
	}
	return "", true
}

// unescape decodes every valid %XX escape and keeps any other '%' as it is.
// It is lenient on purpose: one malformed escape such as a trailing "%" must
// not hide an encoded key, since many servers decode such values anyway.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
