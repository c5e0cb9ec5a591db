package main

import "github.com/footstep/authz/internal/cli"

// buildVersion is set at build time by the Makefile and the Dockerfile
// (-ldflags "-X main.buildVersion=...").
var buildVersion string

func version() string { return cli.Version(buildVersion) }
