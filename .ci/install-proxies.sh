#!/usr/bin/env bash
# Installs the proxies that the end-to-end suite (go test -tags e2e ./e2e) runs:
# nginx from the distribution's packages, and Caddy built with go install into a
# cached GOBIN. Safe to run again: each step is skipped when already done.
#
# Prints the directory holding caddy on its last line; put it on PATH, e.g.
#   PATH="$(.ci/install-proxies.sh | tail -n 1):$PATH"
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/tools.sh"

CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"

sudo_if_needed() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_nginx() {
	if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
		echo "nginx: already installed ($(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1))" >&2
		return
	fi
	export DEBIAN_FRONTEND=noninteractive
	sudo_if_needed apt-get update -q >&2
	# nginx-light is gone from recent Debian releases; nginx has auth_request.
	sudo_if_needed apt-get install -y -q --no-install-recommends nginx-light >&2 ||
		sudo_if_needed apt-get install -y -q --no-install-recommends nginx >&2
	# The distribution starts a system nginx on port 80; the suite runs its own.
	if command -v service >/dev/null 2>&1; then
		sudo_if_needed service nginx stop >/dev/null 2>&1 || true
	fi
}

install_caddy() {
	tool_cached caddy "$CADDY_VERSION" "caddy-$CADDY_VERSION" && return
	go_install_tool caddy "caddy-$CADDY_VERSION" "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION"
}

install_nginx
install_caddy
echo "$TOOLS_BIN"
