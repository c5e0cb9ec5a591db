package envoy

import (
	"encoding/json"
	"strconv"

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
func credentialHeaders(s authz.Surface) []string {
	if s == authz.SurfaceMCP {
		return []string{authz.HeaderAPIKey, authz.HeaderAuthorization}
	}
	return []string{authz.HeaderAPIKey}
}

func okResponse(r *Result) *authv3.CheckResponse {
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
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func deniedResponse(c authz.Code, s authz.Surface) *authv3.CheckResponse {
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
