package main

import "runtime/debug"

// version returns the module version the binary was built from, "(devel)"
// for a build from a work tree, or "unknown".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
