package main

import (
	"os"
	"testing"

	"github.com/footstep/authz/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBinaries()
	os.Exit(code)
}
