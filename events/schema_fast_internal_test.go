package events

import (
	"testing"
)

// FuzzDecodeKeyCanonical: whatever the fast reader of key records takes,
// the strict decoder reads the same way.
func FuzzDecodeKeyCanonical(f *testing.F) {
	for _, s := range []string{
		`{"key_id":"k1","account_id":"a1","state":"active"}`,
		`{"key_id":"k1","account_id":"a1","state":"revoked","expires_at":"2026-12-31T00:00:00.5Z"}`,
		`{"key_id":"k1","account_id":"a1","state":"active","expires_at":""}`,
		`{"key_id":"k1","account_id":"a1","state":"active"} `, `{"key_id":"k1","account_id":"a1","state":"active"}{}`,
		`{"key_id":"k\u0031","account_id":"a1","state":"active"}`, `{"key_id":"k1", "account_id":"a1","state":"active"}`,
		`{"key_id":"k1","account_id":"a1","state":"active","key_id":"k2"}`, `{"account_id":"a1","key_id":"k1","state":"active"}`,
		`{"key_id":"k1","account_id":"a1","state":"active","expires_at":null}`, "{\"key_id\":\"k\xff\",\"account_id\":\"a1\",\"state\":\"active\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeKeyCanonical(data)
		if !ok {
			return
		}
		var strict keyJSON
		err := decodeStrict(data, map[string]*string{
			"key_id": &strict.KeyID, "account_id": &strict.AccountID, "state": &strict.State, "expires_at": &strict.ExpiresAt,
		}, optionalKeyFields)
		if err != nil || strict != fast {
			t.Fatalf("%q: canonical reading %+v; strict %+v, %v", data, fast, strict, err)
		}
	})
}

func TestDecodeKeyCanonicalTakesWhatEncodeKeyWrites(t *testing.T) {
	for _, in := range []string{
		`{"key_id":"k1","account_id":"a1","state":"active"}`,
		`{"key_id":"k1","account_id":"a1","state":"revoked","expires_at":"2026-12-31T00:00:00Z"}`,
	} {
		if _, ok := decodeKeyCanonical([]byte(in)); !ok {
			t.Errorf("decodeKeyCanonical(%s) refused it", in)
		}
	}
	for _, in := range []string{
		`{"key_id":"k1","account_id":"a1","state":"active"} `, `{"key_id":"k\u0031","account_id":"a1","state":"active"}`,
		`{"key_id":"k1","account_id":"a1","state":"active","key_id":"k2"}`, `{"key_id":"k1","account_id":"a1","state":"active","expires_at":null}`,
		`{"key_id":"k1","account_id":"a1","state":"active","extra":"x"}`,
	} {
		if _, ok := decodeKeyCanonical([]byte(in)); ok {
			t.Errorf("decodeKeyCanonical(%s) took it; it is for EncodeKey's form only", in)
		}
	}
}
