package main

import "runtime/debug"

// buildVersion is set at build time by the Makefile and the Dockerfile
// (-ldflags "-X main.buildVersion=...").
var buildVersion string

// version returns the version set at build time, else the module version
// the binary was built from ("(devel)" for a build from a work tree), else
// "unknown".
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
