package envoy_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/footstep/authz/envoy"
)

// TestAnswersOverGRPC: what a client decodes from the server's codec, which
// sends kept answers as bytes encoded once, is the response Check returns
// in process: the first time an allowed answer is rendered, and the times
// after, when it is kept; on both surfaces, in shadow mode, with client
// x-footstep-* headers to remove, and for every denial. With gRPC's own
// codec the same answers are marshalled at each call.
func TestAnswersOverGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reqs := map[string][2]string{
		"api, active":     {"api", keyActive},
		"mcp, active":     {"mcp", keyActive},
		"api, broke":      {"api", keyBroke},
		"api, suspended":  {"api", keySuspended},
		"api, revoked":    {"api", keyRevoked},
		"api, unknown":    {"api", keyUnknown},
		"mcp, unknown":    {"mcp", keyUnknown},
		"api, malformed":  {"api", "nope"},
		"api, unreadable": {"api", keyUnreadable},
	}
	for _, shadow := range []bool{false, true} {
		for codec, opts := range map[string][]grpc.ServerOption{"kept bytes": {envoy.ServerOption()}, "grpc's codec": nil} {
			srv := newServer(t, shadow)
			client := serveGRPC(t, srv, opts)
			for name, r := range reqs {
				for _, spoof := range []bool{false, true} {
					headers := map[string]string{"x-api-key": r[1]}
					if r[0] == "mcp" {
						headers = map[string]string{"authorization": "Bearer " + r[1]}
					}
					if spoof {
						headers["x-footstep-account-id"] = "acct_other"
					}
					req := request(r[0], "/v1/x", headers)
					for i := range 3 {
						got, err := client.Check(ctx, req)
						if err != nil {
							t.Fatalf("shadow %v, %s, %s: Check: %v", shadow, codec, name, err)
						}
						want, _ := srv.Check(ctx, req)
						if !proto.Equal(got, want) {
							t.Errorf("shadow %v, %s, %s, spoofed %v, call %d: over gRPC %v; in process %v", shadow, codec, name, spoof, i, got, want)
						}
					}
				}
			}
		}
	}
}
