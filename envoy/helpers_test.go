package envoy_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

// Keys of the fake states, one per state: only keyActive may ever be allowed.
const (
	keyActive      = "sk_live_active_funded"
	keyBroke       = "sk_live_active_broke"
	keySuspended   = "sk_live_suspended"
	keyRevoked     = "sk_live_revoked"
	keyUnreadable  = "sk_live_unreadable"   // its record cannot be decoded
	keyReadFails   = "sk_live_read_fails"   // reading its record fails
	keyAccountDown = "sk_live_account_down" // its account cannot be read
	keyUnknown     = "sk_live_unknown"
)

// newStates holds a key in each state (keyUnreadable unreadable, keyReadFails
// failing to read) and two accounts; anything else is absent, and acct_down
// fails as NATS would.
func newStates(tb testing.TB) *testkit.States {
	tb.Helper()
	s := testkit.NewStates()
	putKey(s, keyActive, "k1", "acct_rich", authz.StateActive)
	putKey(s, keyBroke, "k2", "acct_broke", authz.StateActive)
	putKey(s, keySuspended, "k3", "acct_rich", authz.StateSuspended)
	putKey(s, keyRevoked, "k4", "acct_rich", authz.StateRevoked)
	s.PutKey(authz.APIKey(keyUnreadable).Hash(), authz.KeyEntry{Revision: 1, Presence: authz.Unreadable})
	s.FailKey(authz.APIKey(keyReadFails).Hash(), errors.New("fake: unreadable"))
	putKey(s, keyAccountDown, "k6", "acct_down", authz.StateActive)
	putBalance(tb, s, "acct_rich", "12.50")
	putBalance(tb, s, "acct_broke", "0")
	s.FailAccount("acct_down", errors.New("fake: nats down"))
	return s
}

// putKey puts key's record, with id and account, at revision 1.
func putKey(s *testkit.States, key, id, account string, state authz.KeyState) {
	s.PutKey(authz.APIKey(key).Hash(), authz.KeyEntry{Revision: 1, Presence: authz.Present,
		Record: authz.KeyRecord{KeyID: id, AccountID: account, State: state}})
}

// putBalance puts account id with balance at revision 1.
func putBalance(tb testing.TB, s *testkit.States, id, balance string) {
	tb.Helper()
	s.PutAccount(id, authz.AccountEntry{Revision: 1, Presence: authz.Present, Account: authz.Account{Balance: testkit.Balance(tb, balance)}})
}

// request builds a CheckRequest with the headers map, as Envoy sends it by default.
func request(surface, path string, headers map[string]string) *authv3.CheckRequest {
	return testkit.CheckRequest(path, headers, testkit.Surface(surface))
}

// rawRequest builds a CheckRequest with header_map raw values, as Envoy sends
// it with encode_raw_headers: one entry per header line, bytes as they came.
func rawRequest(surface, path string, headers [][2]string) *authv3.CheckRequest {
	req := request(surface, path, nil)
	hm := &corev3.HeaderMap{}
	for _, h := range headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])})
	}
	req.Attributes.Request.Http.HeaderMap = hm
	return req
}

// decision reads the code and HTTP status of a response.
func decision(tb testing.TB, resp *authv3.CheckResponse) (string, int) {
	tb.Helper()
	if resp.GetStatus() == nil {
		tb.Fatalf("response without a status: %v", resp)
	}
	if resp.GetStatus().GetCode() == 0 {
		return "ok", 200
	}
	d := resp.GetDeniedResponse()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
		tb.Fatalf("denial body %q: %v", d.GetBody(), err)
	}
	return body.Error.Code, int(d.GetStatus().GetCode())
}

// serveGRPC serves srv's Check on 127.0.0.1:0 with serverOpts (the server
// passes envoy.ServerOption) and returns a client dialled with dialOpts
// besides plaintext.
func serveGRPC(tb testing.TB, srv *envoy.Server, serverOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) authv3.AuthorizationClient {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	gs := grpc.NewServer(serverOpts...)
	srv.Register(gs)
	go func() { _ = gs.Serve(l) }()
	tb.Cleanup(gs.Stop)
	dialOpts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts...)
	cc, err := grpc.NewClient(l.Addr().String(), dialOpts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return authv3.NewAuthorizationClient(cc)
}

// newServer returns a Server over the check states, in shadow mode or not.
func newServer(tb testing.TB, shadow bool) *envoy.Server {
	tb.Helper()
	srv, _ := newEngineServer(tb, envoy.EngineConfig{States: newStates(tb), Shadow: shadow}, nil)
	return srv
}

// newEngineServer returns an Engine built from cfg and a Server over it
// that logs to log.
func newEngineServer(tb testing.TB, cfg envoy.EngineConfig, log *slog.Logger) (*envoy.Server, *envoy.Engine) {
	tb.Helper()
	engine, err := envoy.NewEngine(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := envoy.NewServer(engine, log)
	if err != nil {
		tb.Fatal(err)
	}
	return srv, engine
}
