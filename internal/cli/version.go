package cli

import "runtime/debug"

// Version returns what a binary reports with --version: built, the version
// set at build time (-ldflags "-X main.buildVersion=...", as the Makefile and
// the Dockerfile do), else the module version the binary was built from
// ("(devel)" for a build from a work tree), else "unknown".
func Version(built string) string {
	if built != "" {
		return built
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
