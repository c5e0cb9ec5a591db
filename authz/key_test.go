package authz_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

func TestParseAPIKey(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{testKey, true},
		{"sk_live_x", true},
		{"sk_live_AZaz09_-", true},
		{key200, true},
		{key201, false},
		{"", false},
		{"sk_live_", false},
		{"sk_live", false},
		{"SK_LIVE_abc", false},
		{"sk_test_abc", false},
		{" " + testKey, false}, // ParseAPIKey does not trim; Extract does
		{testKey + " ", false},
		{"sk_live_a b", false},
		{"sk_live_a\tb", false},
		{"sk_live_a,b", false},
		{"sk_live_é", false},
		{"sk_live_a.b", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := authz.ParseAPIKey(tt.in)
			if tt.ok {
				if err != nil || string(got) != tt.in {
					t.Errorf("ParseAPIKey(%q) = %q, %v; want %q, nil", tt.in, string(got), err, tt.in)
				}
				return
			}
			if !errors.Is(err, authz.ErrKeyFormat) || got != "" {
				t.Errorf("ParseAPIKey(%q) = %q, %v; want \"\", ErrKeyFormat", tt.in, string(got), err)
			}
			if len(tt.in) > len(authz.KeyPrefix) && strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseAPIKey(%q) error %q quotes its input", tt.in, err)
			}
		})
	}
}

const redacted = "sk_live_[REDACTED]"

// TestAPIKeyNeverPrints checks every way a key could reach a log line or an
// error by mistake: it must never show the plaintext.
//
// Two paths are out of reach of any method on a string type and so are not
// asserted: encoding/json writes string-kinded map keys (map[APIKey]T) as they
// are, and fmt and slog print unexported struct fields of type APIKey without
// calling their methods. Code must not hold keys in either.
func TestAPIKeyNeverPrints(t *testing.T) {
	const secret = "sk_live_s3cr3tValue_-xyz"
	k := authz.APIKey(secret)
	cred := authz.Credential{Code: authz.CodeOK, Key: k, Header: authz.HeaderAPIKey, QueryKey: k}
	type wrapper struct {
		Key  authz.APIKey
		Keys []authz.APIKey
	}
	w := wrapper{Key: k, Keys: []authz.APIKey{k}}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%s", "%q", "%+v", "%#v", "%x", "%X", "%d", "%20s", "%-20v", "%.3s", "%T"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, k)
		outputs["fmt pointer "+verb] = fmt.Sprintf(verb, &k)
		outputs["fmt credential "+verb] = fmt.Sprintf(verb, cred)
		outputs["fmt &credential "+verb] = fmt.Sprintf(verb, &cred)
		outputs["fmt wrapper "+verb] = fmt.Sprintf(verb, w)
		outputs["fmt slice "+verb] = fmt.Sprintf(verb, []authz.APIKey{k})
		outputs["fmt map "+verb] = fmt.Sprintf(verb, map[authz.APIKey]authz.APIKey{k: k})
		outputs["fmt any "+verb] = fmt.Sprintf(verb, []any{k})
	}
	outputs["Sprint"] = fmt.Sprint(k)
	outputs["Sprintln"] = fmt.Sprintln(k, cred)
	outputs["String"] = k.String()
	outputs["GoString"] = k.GoString()
	outputs["Errorf"] = fmt.Errorf("lookup %v: %w", k, errors.New("boom")).Error()

	for _, m := range []struct {
		name string
		v    any
	}{{"key", k}, {"credential", cred}, {"wrapper", w}, {"map value", map[string]authz.APIKey{"k": k}}, {"slice", []authz.APIKey{k}}} {
		b, err := json.Marshal(m.v)
		if err != nil {
			t.Fatalf("json.Marshal(%s) = %v", m.name, err)
		}
		outputs["json "+m.name] = string(b)
	}
	text, err := k.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText() = %v", err)
	}
	outputs["MarshalText"] = string(text)

	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("check", "key", k)
		log.Info("check", slog.Any("key", k), slog.Any("ptr", &k), slog.Any("credential", cred), slog.Any("wrapper", w))
		log.With("key", k).WithGroup("g").Info("check", "key", k, "keys", []authz.APIKey{k})
		log.Error("failed", "err", fmt.Errorf("key %v", k))
		outputs["slog "+name] = buf.String()
		if !strings.Contains(buf.String(), redacted) {
			t.Errorf("slog %s output %q lacks the placeholder %q", name, buf.String(), redacted)
		}
	}

	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, "s3cr3t") {
			t.Errorf("%s printed the plaintext key: %q", name, out)
		}
		if hexed := hex.EncodeToString([]byte(secret)); strings.Contains(strings.ToLower(out), hexed) {
			t.Errorf("%s printed the key in hex: %q", name, out)
		}
	}
	for _, name := range []string{"fmt %v", "fmt %s", "fmt %q", "fmt %+v", "fmt %#v", "String", "GoString", "json key", "MarshalText"} {
		if !strings.Contains(outputs[name], redacted) {
			t.Errorf("%s = %q; want it to contain %q", name, outputs[name], redacted)
		}
	}
}

func TestHash(t *testing.T) {
	tests := []struct {
		key  authz.APIKey
		want string
	}{
		// printf 'sk_live_abc123def456' | sha256sum
		{testKey, "e822616849d51343038c0ee860f22efc59e7894ee7dd3c6a88c13e3a42d91418"},
		{"sk_live_x", ""},
		{authz.APIKey(key200), ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.key), func(t *testing.T) {
			sum := sha256.Sum256([]byte(tt.key))
			want := hex.EncodeToString(sum[:])
			if tt.want != "" && want != tt.want {
				t.Fatalf("test vector: sha256(%q) = %s; want %s", string(tt.key), want, tt.want)
			}
			h := tt.key.Hash()
			if got := h.String(); got != want {
				t.Errorf("APIKey(%q).Hash() = %s; want %s", string(tt.key), got, want)
			}
			if h != authz.KeyHash(sum) {
				t.Errorf("APIKey(%q).Hash() = %x; want %x", string(tt.key), h, sum)
			}
			back, err := authz.ParseKeyHash(h.String())
			if err != nil || back != h {
				t.Errorf("ParseKeyHash(%s) = %x, %v; want %x, nil", h, back, err, h)
			}
		})
	}
	if authz.APIKey("sk_live_a").Hash() == authz.APIKey("sk_live_b").Hash() {
		t.Error("two keys have the same hash")
	}
}

func TestParseKeyHash(t *testing.T) {
	const valid = "e822616849d51343038c0ee860f22efc59e7894ee7dd3c6a88c13e3a42d91418"
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"lowercase", valid, true},
		{"all zeros", strings.Repeat("0", 64), true},
		{"all f", strings.Repeat("f", 64), true},
		{"uppercase", strings.ToUpper(valid), false},
		{"one uppercase digit", "E" + valid[1:], false},
		{"empty", "", false},
		{"63 digits", valid[:63], false},
		{"65 digits", valid + "0", false},
		{"128 digits", valid + valid, false},
		{"non-hex letter", "g" + valid[1:], false},
		{"0x prefix", "0x" + valid[2:], false},
		{"space", " " + valid[1:], false},
		{"trailing newline", valid[:63] + "\n", false},
		{"key instead of hash", testKey, false},
		{"multibyte", "é" + valid[2:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := authz.ParseKeyHash(tt.in)
			if tt.ok {
				if err != nil || h.String() != tt.in {
					t.Errorf("ParseKeyHash(%q) = %s, %v; want %s, nil", tt.in, h, err, tt.in)
				}
				return
			}
			if !errors.Is(err, authz.ErrHashFormat) {
				t.Errorf("ParseKeyHash(%q) = %s, %v; want ErrHashFormat", tt.in, h, err)
			}
			if h != (authz.KeyHash{}) {
				t.Errorf("ParseKeyHash(%q) returned a non-zero hash %s with an error", tt.in, h)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"key_123", true},
		{"acct_9", true},
		{"acct-9_X", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"a b", false},
		{" a", false},
		{"a.b", false},
		{"a/b", false},
		{"a:b", false},
		{"é", false},
		{"a\x00", false},
		{"a\n", false},
		{"sk_live_abc123", false}, // looks like a key: it would leak into headers and logs
		{"key_sk_live_abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := authz.ValidID(tt.in); got != tt.want {
				t.Errorf("ValidID(%q) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}
