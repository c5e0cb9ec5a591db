package main

import (
	"testing"

	"github.com/footstep/authz/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
