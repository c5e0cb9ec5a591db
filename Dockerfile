# syntax=docker/dockerfile:1
# footstep-authz image: static binaries on distroless, running as a non-root user.
#   docker build -t footstep-authz .
# Holds footstep-authz (the entrypoint), footstepctl and the demo echo-upstream.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X main.buildVersion=${VERSION}" -o /out/ ./cmd/footstep-authz ./cmd/footstepctl ./cmd/echo-upstream

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# 65532 is distroless's "nonroot" user; numeric so Kubernetes can verify runAsNonRoot.
USER 65532:65532
# gRPC ext_authz + health, HTTP authorization, admin (metrics, healthz, readyz).
EXPOSE 9001 9002 9003
ENTRYPOINT ["/usr/local/bin/footstep-authz"]
