package envoy

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// An answer is a CheckResponse together with its wire form when it is sent
// again and again: the allowed answer kept for a hot key, every denial.
// Encoding an allowed answer (headers, headers to remove, a metadata
// Struct) costs about 2 µs, most of what a Check costs beyond gRPC's own
// work; the server's codec (ServerOption) sends the bytes made once
// instead. An answer is a proto.Message through the embedded response, so
// any codec can still send it.
type answer struct {
	*authv3.CheckResponse
	wire []byte // the response marshalled; nil when it is not kept
}

// encoded returns r with its wire form. r must never be modified.
func encoded(r *authv3.CheckResponse) *answer { return &answer{CheckResponse: r, wire: wireOf(r)} }

func wireOf(r *authv3.CheckResponse) []byte {
	wire, err := proto.Marshal(r)
	if err != nil {
		panic(err) // unreachable: the responses are built here, all fields valid
	}
	return wire
}

// codec is gRPC's proto codec, except that an answer with a wire form is
// sent as those bytes.
type codec struct{ encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if a, ok := v.(*answer); ok && a.wire != nil {
		return mem.BufferSlice{mem.SliceBuffer(a.wire)}, nil // read, never freed or written
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal reads a CheckRequest with decodeCheck, which keeps only what
// the service reads; other messages go through gRPC's proto codec.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodeCheck(buf.ReadOnlyData(), req)
}

// ServerOption is the option of the gRPC server a Server is registered on:
// its codec sends the answers made once as they are (see Register), and
// reads a CheckRequest's credential headers, path and surface without
// decoding the rest of it (decodeCheck). Other messages go through gRPC's
// proto codec.
func ServerOption() grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{encoding.GetCodecV2(grpcproto.Name)})
}

// Register serves s as envoy.service.auth.v3.Authorization on g, which
// should be made with ServerOption. The service is authv3's, with a Check
// handler that hands gRPC the answer rather than the bare response, so that
// the codec can tell a kept one; on a server with another codec the
// answers are marshalled at each call like any message. Interceptors of
// Check therefore see a proto.Message that is not a *authv3.CheckResponse,
// and must not modify it: a kept answer is shared, and its bytes would not
// follow. With ServerOption they also see a CheckRequest holding only what
// the service reads.
func (s *Server) Register(g *grpc.Server) {
	desc := authv3.Authorization_ServiceDesc
	desc.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: s.handleCheck}}
	g.RegisterService(&desc, s)
}

func (s *Server) handleCheck(_ any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
	req := new(authv3.CheckRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	if intercept == nil {
		return s.answer(ctx, req), nil
	}
	info := &grpc.UnaryServerInfo{Server: s, FullMethod: authv3.Authorization_Check_FullMethodName}
	return intercept(ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return s.answer(ctx, req.(*authv3.CheckRequest)), nil
	})
}
