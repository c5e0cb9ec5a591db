package main

import shared "github.com/footstep/authz/internal/cli"

// buildVersion is set at build time by the Makefile and the Dockerfile
// (-ldflags "-X main.buildVersion=...").
var buildVersion string

// version returns the version set at build time, else the module's.
func version() string { return shared.Version(buildVersion) }
