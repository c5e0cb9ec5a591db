package envoy

import (
	"encoding/json"
	"hash/maphash"
	"strconv"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/footstep/authz/authz"
)

// Headers set on allowed requests, overwriting whatever the client sent.
const (
	HeaderAccountID = "x-footstep-account-id"
	HeaderKeyID     = "x-footstep-key-id"
)

// HeaderShadow carries, in shadow mode, the code enforcement would have
// denied the request with.
const HeaderShadow = "x-footstep-authz-shadow"

// identityHeaders are removed from a request allowed without a known key.
var identityHeaders = []string{HeaderAccountID, HeaderKeyID}

// Dynamic metadata keys set on allowed requests, under the ext_authz filter's
// namespace, for access logs and the rate-limit filter.
const (
	MetadataAccountID = "account_id"
	MetadataKeyID     = "key_id"
)

// RetryAfterSeconds is what a 503 asks clients to wait before retrying.
const RetryAfterSeconds = 1

// denialBody returns the documented JSON body for a denial code.
func denialBody(c authz.Code) string {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	b, err := json.Marshal(struct {
		Error detail `json:"error"`
	}{detail{c.String(), c.Message()}})
	if err != nil {
		panic(err) // unreachable: two strings always marshal
	}
	return string(b)
}

// denialHeaders returns the response headers of a denial: its content type,
// retry-after on a 503, and www-authenticate on a 401 of the MCP surface.
func denialHeaders(c authz.Code, s authz.Surface) [][2]string {
	h := [][2]string{{"content-type", "application/json"}}
	switch {
	case c.Status() == 503:
		h = append(h, [2]string{"retry-after", strconv.Itoa(RetryAfterSeconds)})
	case c.Status() == 401 && s == authz.SurfaceMCP:
		h = append(h, [2]string{"www-authenticate", "Bearer"})
	}
	return h
}

// grpcCode is the google.rpc code reported with a denial. Envoy looks only at
// its being non-OK; the HTTP status is set explicitly.
func grpcCode(c authz.Code) codes.Code {
	switch c.Status() {
	case 401:
		return codes.Unauthenticated
	case 503:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}

// credentialHeaders returns the headers that carry credentials on a surface,
// all of which are removed before the request goes upstream.
// The slices are shared: callers append to them (which copies, as their
// capacity is their length) but never write into them.
func credentialHeaders(s authz.Surface) []string {
	if s == authz.SurfaceMCP {
		return mcpCredentialHeaders
	}
	return apiCredentialHeaders
}

var (
	apiCredentialHeaders = []string{authz.HeaderAPIKey}
	mcpCredentialHeaders = []string{authz.HeaderAPIKey, authz.HeaderAuthorization}
)

// okStatus is the google.rpc status of every allowed answer. Responses share
// it: a proto message that nobody modifies is safe to marshal concurrently.
var okStatus = &rpcstatus.Status{Code: int32(codes.OK)}

// okAnswer holds every message of an allowed response with identity, so that
// building one costs a single allocation (and the metadata map) instead of
// one per message.
type okAnswer struct {
	keyID, accountID string // what the response was built for
	surface          authz.Surface
	resp             authv3.CheckResponse
	oneof            authv3.CheckResponse_OkResponse
	ok               authv3.OkHttpResponse
	opts             [2]*corev3.HeaderValueOption
	opt              [2]corev3.HeaderValueOption
	hv               [2]corev3.HeaderValue
	meta             structpb.Struct
	vals             [2]structpb.Value
	strs             [2]structpb.Value_StringValue
}

// okAnswerSlots is the number of allowed responses an okAnswers keeps: the
// hot keys' answers are reused, at a fixed cost of a few MiB at most.
const okAnswerSlots = 4096

// okAnswers keeps recent allowed responses, one slot per hash of the key id
// and surface. An allowed response depends only on the key id, the account
// id and the surface, all compared before a stored one is reused; the
// decision itself is always made afresh.
type okAnswers struct {
	seed  maphash.Seed
	slots [okAnswerSlots]atomic.Pointer[okAnswer]
}

func newOKAnswers() *okAnswers { return &okAnswers{seed: maphash.MakeSeed()} }

// response returns the allowed response for r, reusing a stored one when it
// was built for the same identity and surface.
func (o *okAnswers) response(r *Result) *authv3.CheckResponse {
	if r.Code != authz.CodeOK || r.Key.KeyID == "" {
		return okResponseSlow(r)
	}
	slot := &o.slots[(maphash.String(o.seed, r.Key.KeyID)^uint64(r.Surface))%okAnswerSlots]
	if a := slot.Load(); a != nil && a.keyID == r.Key.KeyID && a.accountID == r.Key.AccountID && a.surface == r.Surface {
		return &a.resp
	}
	a := newOKAnswer(r)
	slot.Store(a)
	return &a.resp
}

// newOKAnswer builds the allowed response of a known key in one allocation
// besides the metadata map.
func newOKAnswer(r *Result) *okAnswer {
	a := &okAnswer{keyID: r.Key.KeyID, accountID: r.Key.AccountID, surface: r.Surface}
	a.hv[0] = corev3.HeaderValue{Key: HeaderAccountID, Value: r.Key.AccountID}
	a.hv[1] = corev3.HeaderValue{Key: HeaderKeyID, Value: r.Key.KeyID}
	for i := range a.opt {
		a.opt[i].Header = &a.hv[i]
		a.opt[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		a.opts[i] = &a.opt[i]
	}
	a.strs[0].StringValue, a.strs[1].StringValue = r.Key.AccountID, r.Key.KeyID
	a.vals[0].Kind, a.vals[1].Kind = &a.strs[0], &a.strs[1]
	a.meta.Fields = map[string]*structpb.Value{MetadataAccountID: &a.vals[0], MetadataKeyID: &a.vals[1]}
	a.ok.Headers = a.opts[:]
	a.ok.DynamicMetadata = &a.meta
	a.ok.HeadersToRemove = credentialHeaders(r.Surface)
	a.oneof.OkResponse = &a.ok
	a.resp.Status = okStatus
	a.resp.HttpResponse = &a.oneof
	return a
}

// okResponseSlow answers the rare allowed requests: shadow mode, and a
// request allowed without a known key.
func okResponseSlow(r *Result) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	if r.Key.KeyID != "" {
		ok.Headers = []*corev3.HeaderValueOption{
			overwrite(HeaderAccountID, r.Key.AccountID),
			overwrite(HeaderKeyID, r.Key.KeyID),
		}
		ok.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			MetadataAccountID: structpb.NewStringValue(r.Key.AccountID),
			MetadataKeyID:     structpb.NewStringValue(r.Key.KeyID),
		}}
	}
	if r.Key.KeyID == "" {
		// No identity to give: make sure none that a client sent survives.
		ok.HeadersToRemove = identityHeaders
	}
	if r.Code != authz.CodeOK {
		// Shadow mode: allowed, reported, and the credential left for the
		// upstream that still authenticates on its own.
		ok.Headers = append(ok.Headers, overwrite(HeaderShadow, r.Code.String()))
	} else {
		ok.HeadersToRemove = credentialHeaders(r.Surface)
	}
	return &authv3.CheckResponse{
		Status:       okStatus,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// deniedResponses holds the denial of every code on every surface, built
// once: a denial carries nothing of the request, and proto messages that
// nobody modifies are safe to marshal concurrently.
var deniedResponses = func() (t [authz.CodeOK + 1][2]*authv3.CheckResponse) {
	for c := range t {
		for s := range t[c] {
			t[c][s] = buildDeniedResponse(authz.Code(c), authz.Surface(s))
		}
	}
	return t
}()

// deniedResponse returns the shared, immutable denial of c on s. Callers
// must not modify it.
func deniedResponse(c authz.Code, s authz.Surface) *authv3.CheckResponse {
	if int(c) < len(deniedResponses) && int(s) < 2 {
		return deniedResponses[c][s]
	}
	return buildDeniedResponse(c, s)
}

func buildDeniedResponse(c authz.Code, s authz.Surface) *authv3.CheckResponse {
	var headers []*corev3.HeaderValueOption
	for _, h := range denialHeaders(c, s) {
		headers = append(headers, overwrite(h[0], h[1]))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(c)), Message: c.String()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(c.Status())},
			Headers: headers,
			Body:    denialBody(c),
		}},
	}
}
