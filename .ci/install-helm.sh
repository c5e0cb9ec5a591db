#!/usr/bin/env bash
# Installs helm, which the chart checks (go test ./k8s, charts/footstep-authz) run,
# with go install into a cached GOBIN: no download other than the Go module proxy.
# Safe to run again: skipped when the cached version is already there.
#
# Prints the directory holding helm on its last line; put it on PATH, e.g.
#   PATH="$(.ci/install-helm.sh | tail -n 1):$PATH"
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/tools.sh"

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

install_helm() {
	local stamp="helm-$HELM_VERSION-stamped"
	tool_cached helm "$HELM_VERSION" "$stamp" && return
	# The version stamps that helm's own Makefile sets: without them helm reports no
	# version and renders for Kubernetes v1.20. The Kubernetes version is the one after
	# helm's client-go (v0.37 -> 1.37), as in that Makefile.
	local gomod kminor pkg=helm.sh/helm/v3
	gomod=$(cd / && go mod download -json "$pkg@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	kminor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
	local ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION"
	ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$kminor"
	ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$kminor"
	# About 3 to 5 minutes cold on 2 cores.
	CGO_ENABLED=0 go_install_tool helm "$stamp" -trimpath -ldflags "$ldflags" "$pkg/cmd/helm@$HELM_VERSION"
	echo "helm: installed $("$TOOLS_BIN/helm" version --short) in $TOOLS_BIN" >&2
}

install_helm
echo "$TOOLS_BIN"
