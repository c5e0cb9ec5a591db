package envoy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

// TestAllowanceRenderingsAgree renders allowances for gRPC and for HTTP and
// checks that both carry the same policy: the same headers set (HTTP adds
// the identity headers empty when it removes them), the same headers
// removed, and the credential removed exactly when the decision is OK.
func TestAllowanceRenderingsAgree(t *testing.T) {
	known := authz.KeyRecord{KeyID: "k1", AccountID: "acct_1", State: authz.StateActive}
	tests := []struct {
		name string
		r    Result
		seen []string
	}{
		{"ok", Result{Code: authz.CodeOK, Key: known}, nil},
		{"ok mcp", Result{Code: authz.CodeOK, Surface: authz.SurfaceMCP, Key: known}, nil},
		{"ok without a key id", Result{Code: authz.CodeOK}, nil},
		{"ok with spoofed headers", Result{Code: authz.CodeOK, Key: known}, []string{"X-Footstep-Key-Id", "x-footstep-a", "X-FOOTSTEP-A"}},
		{"shadow, revoked", Result{Code: authz.CodeKeyRevoked, Shadow: true, Key: known}, []string{"x-footstep-authz-shadow"}},
		{"shadow, unknown", Result{Code: authz.CodeInvalidAPIKey, Shadow: true}, []string{"x-footstep-account-id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := allowanceOf(&tt.r, tt.seen)
			ok := a.grpc().resp.GetOkResponse()
			grpcSet := map[string]string{}
			for _, h := range ok.GetHeaders() {
				grpcSet[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			w := httptest.NewRecorder()
			a.writeHTTP(w)
			var httpRemove []string
			if v := w.Header().Get(HeaderEnvoyRemove); v != "" {
				httpRemove = strings.Split(v, ",")
			}
			if !slices.Equal(httpRemove, ok.GetHeadersToRemove()) {
				t.Errorf("allowanceOf(%s): HTTP removes %v, gRPC %v", tt.name, httpRemove, ok.GetHeadersToRemove())
			}
			for name, v := range grpcSet {
				if got := w.Header().Get(name); got != v {
					t.Errorf("allowanceOf(%s): HTTP %s = %q, gRPC %q", tt.name, name, got, v)
				}
			}
			for _, name := range identityHeaders {
				_, set := grpcSet[name]
				if set == slices.Contains(ok.GetHeadersToRemove(), name) {
					t.Errorf("allowanceOf(%s): %s set %v, removed %v; want exactly one", tt.name, name, set, ok.GetHeadersToRemove())
				}
				if _, present := w.Header()[http.CanonicalHeaderKey(name)]; !present {
					t.Errorf("allowanceOf(%s): HTTP answer without %s", tt.name, name)
				}
			}
			credentialRemoved := slices.Contains(ok.GetHeadersToRemove(), authz.HeaderAPIKey)
			if credentialRemoved != (tt.r.Code == authz.CodeOK) {
				t.Errorf("allowanceOf(%s): credential removed %v; want %v", tt.name, credentialRemoved, tt.r.Code == authz.CodeOK)
			}
			if (ok.GetDynamicMetadata() != nil) != (tt.r.Key.KeyID != "") {
				t.Errorf("allowanceOf(%s): metadata %v for key id %q", tt.name, ok.GetDynamicMetadata(), tt.r.Key.KeyID)
			}
		})
	}
}
