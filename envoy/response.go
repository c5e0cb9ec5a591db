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
// Callers append to it (which copies) but never write into it.
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

// okAnswerSlots is the number of allowed responses an okAnswers keeps: the
// hot keys' answers are reused, at a fixed cost of a few MiB at most.
const okAnswerSlots = 4096

// okAnswers keeps recent allowed responses, each in one of two slots chosen
// by a hash of the key id and surface. The allowance of an ordinary allowed
// request (enforced, a known key, no x-footstep-* header from the client)
// depends only on the key id, the account id and the surface, all compared
// before a stored answer is reused; the decision itself is always made
// afresh.
//
// Two choices, because with one slot a key that shares it with another hot
// key rebuilds its answer (about 2 µs) at almost every use: with 1,000 hot
// keys, a fifth of them did.
type okAnswers struct {
	seed  maphash.Seed
	slots [okAnswerSlots]atomic.Pointer[okAnswer]
}

func newOKAnswers() *okAnswers { return &okAnswers{seed: maphash.MakeSeed()} }

// response returns the allowed response for r, whose client sent the
// x-footstep-* headers named in seen. An ordinary request reuses a stored
// answer; the rare others (shadow mode, no known key, x-footstep-* headers
// to remove) get one rendered for them.
func (o *okAnswers) response(r *Result, seen []string) *answer {
	if r.Code != authz.CodeOK || r.Key.KeyID == "" || len(seen) > 0 {
		a := allowanceOf(r, seen)
		return &a.grpc().answer
	}
	h := maphash.String(o.seed, r.Key.KeyID) ^ uint64(r.Surface)
	first, second := &o.slots[h%okAnswerSlots], &o.slots[(h>>32)%okAnswerSlots]
	for _, slot := range [2]*atomic.Pointer[okAnswer]{first, second} {
		if a := slot.Load(); a != nil && a.keyID == r.Key.KeyID && a.accountID == r.Key.AccountID && a.surface == r.Surface {
			return &a.answer
		}
	}
	a := allowanceOf(r, nil)
	kept := a.grpc()
	kept.keyID, kept.accountID, kept.surface = r.Key.KeyID, r.Key.AccountID, r.Surface
	kept.wire = wireOf(&kept.resp)
	switch {
	case first.Load() == nil:
		first.Store(kept)
	case second.Load() == nil, h>>63 == 1: // both taken: evict one, by the hash's top bit
		second.Store(kept)
	default:
		first.Store(kept)
	}
	return &kept.answer
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
var deniedResponses = func() (t [authz.CodeOK + 1][2]*answer) {
	for c := range t {
		for s := range t[c] {
			t[c][s] = encoded(buildDeniedResponse(authz.Code(c), authz.Surface(s)))
		}
	}
	return t
}()

// deniedResponse returns the shared, immutable denial of c on s. Callers
// must not modify it.
func deniedResponse(c authz.Code, s authz.Surface) *answer {
	if int(c) < len(deniedResponses) && int(s) < 2 {
		return deniedResponses[c][s]
	}
	return &answer{CheckResponse: buildDeniedResponse(c, s)}
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
