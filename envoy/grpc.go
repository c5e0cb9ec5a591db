package envoy

import (
	"context"
	"errors"
	"log/slog"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

var _ authv3.AuthorizationServer = (*Server)(nil)

// Server is the ext_authz v3 gRPC service.
type Server struct {
	engine *Engine
	log    *slog.Logger
	ok     *okAnswers
}

// NewServer returns a Server answering from engine. A nil logger discards.
func NewServer(engine *Engine, log *slog.Logger) (*Server, error) {
	if engine == nil {
		return nil, errors.New("envoy: server needs an engine")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{engine: engine, log: log, ok: newOKAnswers()}, nil
}

// Check answers one authorization request. It never returns an error: every
// outcome, including a malformed request and a state that cannot be read, is
// a CheckResponse with an explicit status, so that Envoy's failure_mode_allow
// never comes into play. Responses may be shared between calls: callers must
// not modify them.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.answer(ctx, req).CheckResponse, nil
}

// answer decides req and returns the response with its wire form when it
// is one kept for reuse.
func (s *Server) answer(ctx context.Context, req *authv3.CheckRequest) *answer {
	r, known := requestFromCheck(req)
	if !known {
		s.engine.logUnknownSurface(ctx, s.log, "context extensions", req.GetAttributes().GetContextExtensions()[surfaceExtension])
	}
	res := s.engine.Authorize(ctx, r)
	s.engine.logResult(ctx, s.log, &res, req.GetAttributes().GetRequest().GetHttp().GetId())
	if res.Allowed() {
		return s.ok.response(&res, checkHeaderNames(req.GetAttributes().GetRequest().GetHttp()))
	}
	return deniedResponse(res.Code, res.Surface)
}
