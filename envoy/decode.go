package envoy

import (
	"errors"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/footstep/authz/authz"
)

// The field numbers of what the service reads from a CheckRequest
// (envoy/service/auth/v3 and envoy/config/core/v3/base.proto).
const (
	fieldCheckAttributes       = 1  // CheckRequest.attributes
	fieldAttrRequest           = 4  // AttributeContext.request
	fieldAttrContextExtensions = 10 // AttributeContext.context_extensions
	fieldRequestHTTP           = 2  // AttributeContext.Request.http
	fieldHTTPID                = 1  // HttpRequest.id
	fieldHTTPHeaders           = 3  // HttpRequest.headers
	fieldHTTPPath              = 4  // HttpRequest.path
	fieldHTTPQuery             = 7  // HttpRequest.query
	fieldHTTPHeaderMap         = 13 // HttpRequest.header_map
	fieldHeaderMapHeaders      = 1  // HeaderMap.headers
	fieldHeaderKey             = 1  // HeaderValue.key, and a map entry's key
	fieldHeaderValue           = 2  // HeaderValue.value, and a map entry's value
	fieldHeaderRawValue        = 3  // HeaderValue.raw_value
)

// errInvalidUTF8 is what proto.Unmarshal also refuses: a string field that
// is not UTF-8.
var errInvalidUTF8 = errors.New("envoy: CheckRequest: a string field holds invalid UTF-8")

// decodeCheck reads into req, from the wire form of a CheckRequest, what the
// service reads: the request's id, path and query, the credential headers
// and the x-footstep-* ones (from headers and header_map), and the surface
// context extension. Everything else is skipped unread: Envoy sends every
// header of the request and much more, and decoding all of it into maps
// and strings was most of a Check's allocations and a fifth of its CPU.
//
// What it keeps is what proto.Unmarshal would give for those fields (merged
// messages, the last value of a field, the last entry of a map key), and it
// refuses what proto.Unmarshal refuses in them: malformed wire data and
// strings that are not UTF-8 (FuzzDecodeCheck compares the two). A field it
// skips is not looked into, so what would fail proto.Unmarshal inside one,
// such as a header it does not read whose value is not UTF-8, no longer
// fails the call. Kept strings are copies: b may be reused once it returns.
func decodeCheck(b []byte, req *authv3.CheckRequest) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		if num != fieldCheckAttributes {
			return nil
		}
		if req.Attributes == nil {
			req.Attributes = new(authv3.AttributeContext)
		}
		return decodeAttributes(v, req.Attributes)
	})
}

func decodeAttributes(b []byte, a *authv3.AttributeContext) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case fieldAttrRequest:
			if a.Request == nil {
				a.Request = new(authv3.AttributeContext_Request)
			}
			return fields(v, func(num protowire.Number, v []byte) error {
				if num != fieldRequestHTTP {
					return nil
				}
				if a.Request.Http == nil {
					a.Request.Http = new(authv3.AttributeContext_HttpRequest)
				}
				return decodeHTTP(v, a.Request.Http)
			})
		case fieldAttrContextExtensions:
			return mapEntry(v, isSurface, &a.ContextExtensions)
		}
		return nil
	})
}

func decodeHTTP(b []byte, h *authv3.AttributeContext_HttpRequest) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		var err error
		switch num {
		case fieldHTTPID:
			h.Id, err = text(v)
		case fieldHTTPPath:
			h.Path, err = text(v)
		case fieldHTTPQuery:
			h.Query, err = text(v)
		case fieldHTTPHeaders:
			err = mapEntry(v, readsHeader, &h.Headers)
		case fieldHTTPHeaderMap:
			if h.HeaderMap == nil {
				h.HeaderMap = new(corev3.HeaderMap)
			}
			err = fields(v, func(num protowire.Number, v []byte) error {
				if num != fieldHeaderMapHeaders {
					return nil
				}
				return decodeHeaderValue(v, &h.HeaderMap.Headers)
			})
		}
		return err
	})
}

// readsHeader reports whether the service reads a header of this name.
// The names are compared as bytes, so that a header skipped costs no
// string.
func readsHeader(name []byte) bool {
	return string(name) == authz.HeaderAPIKey || string(name) == authz.HeaderAuthorization ||
		len(name) >= len(HeaderPrefix) && hasHeaderPrefix(string(name[:len(HeaderPrefix)]))
}

func isSurface(key []byte) bool { return string(key) == surfaceExtension }

// decodeHeaderValue appends the HeaderValue in b to hs when the service reads its
// header.
func decodeHeaderValue(b []byte, hs *[]*corev3.HeaderValue) error {
	key, value, raw, err := entry(b, true)
	if err != nil || !readsHeader(key) {
		return err
	}
	if !utf8.Valid(key) || !utf8.Valid(value) {
		return errInvalidUTF8
	}
	hv := &corev3.HeaderValue{Key: string(key), Value: string(value)}
	if raw != nil {
		hv.RawValue = append([]byte{}, raw...)
	}
	*hs = append(*hs, hv)
	return nil
}

// mapEntry puts the map<string, string> entry in b into m when keep says
// so.
func mapEntry(b []byte, keep func([]byte) bool, m *map[string]string) error {
	key, value, _, err := entry(b, false)
	if err != nil || !keep(key) {
		return err
	}
	if !utf8.Valid(key) || !utf8.Valid(value) {
		return errInvalidUTF8
	}
	if *m == nil {
		*m = make(map[string]string, 1)
	}
	(*m)[string(key)] = string(value)
	return nil
}

// entry returns the key and value of a map entry or a HeaderValue, and the
// raw value of a HeaderValue (with raw), each the last one given. The
// slices alias b.
func entry(b []byte, raw bool) (key, value, rawValue []byte, err error) {
	err = fields(b, func(num protowire.Number, v []byte) error {
		switch {
		case num == fieldHeaderKey:
			key = v
		case num == fieldHeaderValue:
			value = v
		case num == fieldHeaderRawValue && raw:
			rawValue = v
		}
		return nil
	})
	return key, value, rawValue, err
}

// text returns a string field's value, which must be UTF-8.
func text(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errInvalidUTF8
	}
	return string(v), nil
}

// fields calls f with every length-delimited field of the message in b, in
// order, and checks that the others are well formed. A field of a known
// number sent with another wire type is, as proto.Unmarshal has it, an
// unknown field: skipped.
func fields(b []byte, f func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}

func wireError(n int) error {
	return errors.Join(errors.New("envoy: CheckRequest: malformed wire data"), protowire.ParseError(n))
}
