package events

import "bytes"

// decodeKeyCanonical reads a key record written exactly as EncodeKey writes
// it: no spaces, key_id, account_id, state and an optional expires_at in
// that order, each a string of printable ASCII without escapes. Nearly
// every record is; reading one this way costs a fraction of decodeStrict,
// which a start-up reads a million of. It reports false for any other
// value, which decodeStrict then reads; what it accepts, decodeStrict
// reads the same way (FuzzDecodeKeyCanonical).
func decodeKeyCanonical(data []byte) (keyJSON, bool) {
	var v keyJSON
	if len(data) > MaxValueSize {
		return v, false
	}
	rest, ok := bytes.CutPrefix(data, []byte(`{"key_id":"`))
	ok = ok && cutPlain(&rest, &v.KeyID, `","account_id":"`)
	ok = ok && cutPlain(&rest, &v.AccountID, `","state":"`)
	if !ok {
		return v, false
	}
	if cutPlain(&rest, &v.State, `"}`) {
		return v, len(rest) == 0
	}
	ok = cutPlain(&rest, &v.State, `","expires_at":"`) && cutPlain(&rest, &v.ExpiresAt, `"}`)
	return v, ok && len(rest) == 0
}

// cutPlain reads from *rest a string of printable ASCII other than '"' and
// '\' up to its closing quote, which must start sep, and moves past sep.
func cutPlain(rest *[]byte, dst *string, sep string) bool {
	b := *rest
	i := 0
	for i < len(b) && b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\' {
		i++
	}
	after, ok := bytes.CutPrefix(b[i:], []byte(sep))
	if !ok {
		return false
	}
	*dst, *rest = string(b[:i]), after
	return true
}
