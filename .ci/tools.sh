# Sourced by the install scripts: tools built with go install into a cached
# GOBIN, each with a stamp file beside it that names the build, so that a run
# after the first skips the build.

TOOLS_BIN="${FOOTSTEP_TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/footstep-tools/bin}"

# tool_cached NAME VERSION STAMP: whether TOOLS_BIN holds NAME with the stamp
# .STAMP of its build; says so on standard error when it does.
tool_cached() {
	local name=$1 version=$2 stamp=$3
	if [ -x "$TOOLS_BIN/$name" ] && [ -e "$TOOLS_BIN/.$stamp" ]; then
		echo "$name: cached $version in $TOOLS_BIN" >&2
		return 0
	fi
	return 1
}

# go_install_tool NAME STAMP GO_INSTALL_ARGS...: builds NAME into TOOLS_BIN
# with go install, then leaves the stamp .STAMP as NAME's only one.
go_install_tool() {
	local name=$1 stamp=$2
	shift 2
	mkdir -p "$TOOLS_BIN"
	GOBIN="$TOOLS_BIN" go install "$@" >&2
	rm -f "$TOOLS_BIN/.$name-"*
	touch "$TOOLS_BIN/.$stamp"
}
